/**
 * Beyond one machine: the pool and queue of `@parallel/core` over Redis (or
 * Valkey). The only module of the package with a dependency: a pinned Redis
 * client from npm.
 *
 * - {@linkcode RedisPool}: the pool API with its tasks in Redis, and
 *   {@linkcode serveRedisPool} (or `redis/worker.ts` from a shell) on every
 *   machine that lends its cores.
 * - {@linkcode RedisQueue}: the `Queue` API over a Redis list, for producers
 *   and consumers in any process on any machine.
 *
 * @example
 * ```ts ignore
 * import { RedisQueue } from "@parallel/core/redis";
 * await using queue = new RedisQueue<number>({ url: "redis://127.0.0.1:6379", name: "numbers" });
 * await queue.put(42);
 * console.log(await queue.get()); // 42
 * ```
 *
 * @module
 */

export { RedisQueue, type RedisQueueOptions } from "./queue.ts";
export {
  RedisPool,
  type RedisPoolOptions,
  type RedisPoolStats,
  type RedisTaskOptions,
} from "./pool.ts";
export { type RedisPoolWorker, serveRedisPool, type ServeRedisPoolOptions } from "./serve.ts";
export type { MapOptions, Pool } from "../threads/mod.ts";
export { QueueClosedError, TimeoutError } from "../errors.ts";
export type { WaitOptions } from "../internal/wait.ts";
