/**
 * `@parallel/core`: Python's parallel-computing model (threading,
 * concurrent.futures, multiprocessing) for Deno. Threads, thread pools,
 * futures, locks, processes, process pools, shared values and queues, with
 * typed tasks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ThreadPool } from "@parallel/core";
 * await using pool = new ThreadPool({ maxWorkers: 2 });
 * // An inline task must be self-contained; export recursive ones and use tasks(url).
 * const square = (n: number): number => n * n;
 * assert.deepEqual(await pool.map(square, [10, 20]), [100, 400]);
 * ```
 *
 * @module
 */

export * from "./threads/mod.ts";
export * from "./processes/mod.ts";
export * from "./sync/mod.ts";
export * from "./queue/mod.ts";
export * from "./errors.ts";
