/**
 * Synchronisation between threads, over SharedArrayBuffer memory driven by
 * `Atomics`: Python's `threading` locks and their relatives, plus Go's
 * `WaitGroup`. Pass a primitive to a `Thread` or a pool task (as an argument,
 * or inside an object, array, Map or Set argument) and it arrives as a
 * working primitive on the same shared memory.
 *
 * Every wait comes in two forms: `acquire()` / `wait()` return promises
 * (`Atomics.waitAsync`: safe on the main thread, whose event loop keeps
 * running), and `acquireSync()` / `waitSync()` block (`Atomics.wait`: for
 * threads). Each takes a last `{ timeout, signal }` argument: `acquire`
 * rejects with `TimeoutError` when the time runs out, `Event.wait`,
 * `Condition.wait` and `WaitGroup.wait` resolve to `false`, and
 * `Barrier.wait` breaks the barrier (`BrokenBarrierError`). An aborted
 * `signal` rejects with the signal's `reason`, as `fetch` does.
 *
 * Fairness: a caller that has to wait joins a line that nobody arriving
 * later can overtake, and callers asleep in it are served in the order they
 * went to sleep (see each file's header for the details and exceptions).
 * `acquireSync` spins for about 10 µs before it sleeps; nothing else spins.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Mutex, Thread } from "@parallel/core";
 *
 * const mutex = new Mutex();
 * const counter = new Int32Array(new SharedArrayBuffer(4));
 * const add = (mutex: Mutex, counter: Int32Array, times: number) => {
 *   for (let i = 0; i < times; i++) {
 *     using _lock = mutex.acquireSync();
 *     counter[0]++;
 *   }
 * };
 * const threads = [1, 2].map(() => new Thread({ target: add, args: [mutex, counter, 1000] }).start());
 * await Promise.all(threads.map((thread) => thread.join()));
 * assert.deepEqual(counter[0], 2000);
 * ```
 *
 * @module
 */

export { Mutex } from "./mutex.ts";
export { ReentrantMutex } from "./reentrant_mutex.ts";
export { Semaphore } from "./semaphore.ts";
export { BoundedSemaphore } from "./bounded_semaphore.ts";
export { Event } from "./event.ts";
export { Condition } from "./condition.ts";
export { Barrier } from "./barrier.ts";
export { WaitGroup } from "./wait_group.ts";
export type { WaitOptions } from "../internal/wait.ts";
export type { Lease } from "./_shared.ts";
export { BrokenBarrierError, TimeoutError } from "../errors.ts";
