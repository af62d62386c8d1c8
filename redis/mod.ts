/**
 * Beyond one machine: the pool and queue of `@parallel/core` over Redis (or
 * Valkey). The only module of the package with a dependency: a pinned Redis
 * client from npm.
 *
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
export { QueueClosedError, TimeoutError } from "../errors.ts";
export type { WaitOptions } from "../internal/wait.ts";
