/**
 * Who "this thread" is, for `ReentrantMutex` ownership.
 *
 * Each isolate (the main thread, each worker) draws a random 64-bit tag once
 * and keeps it on `globalThis` under `Symbol.for("@parallel/core.threadTag")`,
 * so that two copies of this module in one isolate agree. Tags are compared
 * with one atomic 64-bit load, and two threads share one with probability
 * about 2^-64 per pair. Unlike a counter, this needs no shared memory between
 * threads and works in any worker, whether the library started it or not.
 * `0n` means "no owner" and is never drawn.
 *
 * @module
 */

const KEY = Symbol.for("@parallel/core.threadTag");

/** The calling thread's tag: a non-zero 64-bit integer, fixed per isolate. */
export function threadTag(): bigint {
  const scope = globalThis as { [KEY]?: bigint };
  let tag = scope[KEY];
  while (tag === undefined || tag === 0n) {
    tag = crypto.getRandomValues(new BigInt64Array(1))[0];
    scope[KEY] = tag;
  }
  return tag;
}
