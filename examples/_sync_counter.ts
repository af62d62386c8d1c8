/**
 * The task module of `04_synchronous.ts`: two ways to add to a shared
 * counter, without and with a lock. A worker imports this file and calls the
 * function it is asked for.
 *
 * @module
 */

import type { Barrier, Mutex } from "../sync/mod.ts";

/**
 * Adds 1 to `counter[0]`, `times` times, with a plain read-modify-write and
 * no lock: another thread can write between the read and the write, and one
 * of the two additions is lost. All parties start together at `start`, so
 * the threads really do run at the same time.
 */
export function addWithoutLock(start: Barrier, counter: Int32Array, times: number): void {
  start.waitSync();
  for (let i = 0; i < times; i++) {
    counter[0] = counter[0] + 1;
  }
}

/** The same additions, each one holding `mutex`: none is lost. */
export function addWithLock(
  start: Barrier,
  mutex: Mutex,
  counter: Int32Array,
  times: number,
): void {
  start.waitSync();
  for (let i = 0; i < times; i++) {
    using _lock = mutex.acquireSync();
    counter[0] = counter[0] + 1;
  }
}
