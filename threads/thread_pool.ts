/**
 * `ThreadPool`: Python's `ThreadPoolExecutor` (and `multiprocessing.Pool`'s
 * API) over Web Workers. Deno has no interpreter lock, so a thread pool runs
 * CPU-bound work in parallel too.
 *
 * @module
 */

import { Pool, type PoolOptions } from "../internal/pool.ts";
import "./_transport.ts";

/** Options of a {@linkcode ThreadPool}: those of every pool. */
export type ThreadPoolOptions = PoolOptions;

/**
 * A pool of worker threads that runs tasks in parallel.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ThreadPool } from "@parallel/core";
 * await using pool = new ThreadPool({ maxWorkers: 2 });
 * const square = (x: number) => x * x;
 * assert.equal(await pool.submit(square, 7), 49);
 * assert.deepEqual(await pool.map(square, [1, 2, 3]), [1, 4, 9]);
 * ```
 *
 * @example Overlap I/O-bound tasks on each thread
 * ```ts
 * import assert from "node:assert/strict";
 * import { ThreadPool } from "@parallel/core";
 * await using pool = new ThreadPool({ maxWorkers: 1, concurrentTasksPerWorker: 3 });
 * const wait = (ms: number) => new Promise<number>((resolve) => setTimeout(() => resolve(ms), ms));
 * // Three waits on one thread run at once, not one after another.
 * assert.deepEqual(await pool.map(wait, [50, 50, 50], { chunkSize: 1 }), [50, 50, 50]);
 * assert.equal(pool.stats.workers, 1);
 * ```
 */
export class ThreadPool extends Pool {
  /**
   * Creates a thread pool. Workers start on demand (or `minWorkers` at once).
   *
   * @param options The pool's options.
   * @throws {RangeError} When a numeric option is out of range (`maxWorkers: 0`).
   * @throws {TypeError} When an option is unknown or of the wrong type.
   */
  constructor(options?: ThreadPoolOptions) {
    super("thread", options ?? {}, "ThreadPool");
  }
}
