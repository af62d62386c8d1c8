/**
 * `@parallel/core`: Python's parallel-computing model (threading,
 * concurrent.futures, multiprocessing) for Deno. Threads, thread pools,
 * futures, locks, processes, process pools, shared values and queues, with
 * typed tasks.
 *
 * @example
 * ```ts
 * import { ThreadPool } from "@parallel/core";
 * await using pool = new ThreadPool({ maxWorkers: 2 });
 * const fib = (n: number): number => n < 2 ? n : fib(n - 1) + fib(n - 2);
 * console.log(await pool.map(fib, [10, 20])); // [55, 6765]
 * ```
 *
 * @module
 */

export * from "./threads/mod.ts";
export * from "./processes/mod.ts";
export * from "./sync/mod.ts";
export * from "./queue/mod.ts";
export * from "./errors.ts";
