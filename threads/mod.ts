/**
 * Threads: `Thread` and `ThreadPool` over Web Workers, with typed tasks,
 * futures (`Task`, `asCompleted`, `wait`) and cooperative cancellation.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ThreadPool } from "@parallel/core/threads";
 * await using pool = new ThreadPool({ maxWorkers: 2 });
 * assert.deepEqual(await pool.map((x: number) => x + 1, [1, 2, 3]), [2, 3, 4]);
 * ```
 *
 * @module
 */

export { Thread, type ThreadOptions } from "./thread.ts";
export { ThreadPool, type ThreadPoolOptions } from "./thread_pool.ts";
export type { MapOptions } from "../internal/maps.ts";
export type { Trace, TraceEvent, TraceOutcome } from "../internal/trace.ts";
export type { JoinOptions } from "../internal/solo.ts";
export { type Pool, type PoolOptions, type PoolStats, type TaskOptions } from "../internal/pool.ts";
export { asCompleted, type ReturnWhen, Task, wait, type WaitResult } from "../futures.ts";
export {
  currentTask,
  currentThread,
  type TaskContext,
  type TaskFunction,
  type TaskRef,
  type TaskRefs,
  tasks,
  type WorkerIdentity,
} from "../tasks.ts";
export {
  BrokenPoolError,
  CancelledError,
  SerializationError,
  TimeoutError,
  WorkerCrashedError,
  type WorkerCrashedErrorInit,
} from "../errors.ts";
