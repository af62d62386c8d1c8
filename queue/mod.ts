/**
 * Queues shared by the main thread, threads and processes: Python's
 * `queue.Queue` and `multiprocessing.Queue` / `JoinableQueue`.
 *
 * A {@linkcode Queue} keeps its items as bytes in a ring buffer in shared
 * memory. Threads it is passed to use that memory directly; processes send
 * each call to the parent, which performs it. Every item is received exactly
 * once, in the order items were put, whoever the producers and consumers are.
 *
 * - `put` / `get` return promises and work everywhere; they take
 *   `{ timeout, signal }` and reject with `TimeoutError`, the signal's
 *   reason, or `QueueClosedError`.
 * - `putSync` / `getSync` block the calling thread (for threads).
 * - `tryPut` / `tryGet` never wait; `tryGet` wraps the item (`{ value }`), so
 *   an `undefined` item is not mistaken for an empty queue.
 * - `close()` ends the queue: puts fail, gets drain what is left, and
 *   `for await (const item of queue)` ends once it is empty.
 * - {@linkcode JoinableQueue} adds `taskDone()` and `join()`.
 *
 * Numbers, strings, booleans, `null` and `undefined` travel in a compact form
 * of their own; everything else (Map, Set, Date, BigInt, typed arrays, plain
 * objects, errors) through `node:v8` serialize. A queue's ring starts at
 * 64 KiB and grows up to 64 MiB: then `put` waits for room as on a full
 * queue, and an item larger than that fails with a `RangeError`. An item
 * handed to a consumer that then dies is gone, as in Python.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Queue, Thread } from "@parallel/core";
 *
 * const queue = new Queue<number>({ maxSize: 100 });
 * const square = (queue: Queue<number>) => {
 *   let sum = 0;
 *   for (;;) {
 *     const n = queue.getSync();
 *     if (n < 0) return sum;
 *     sum += n * n;
 *   }
 * };
 * const thread = new Thread({ target: square, args: [queue] }).start();
 * for (let n = 1; n <= 10; n++) await queue.put(n);
 * await queue.put(-1);
 * assert.deepEqual(await thread.join(), 385);
 * ```
 *
 * @module
 */

export { Queue, type QueueOptions } from "./queue.ts";
export { JoinableQueue } from "./joinable_queue.ts";
export { LifoQueue } from "./lifo_queue.ts";
export { type PriorityOptions, PriorityQueue } from "./priority_queue.ts";
export { pipe, PipeEnd } from "./pipe.ts";
export type { WaitOptions } from "../internal/wait.ts";
export { QueueClosedError, TimeoutError } from "../errors.ts";
