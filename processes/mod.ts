/**
 * Processes: `Process` and `ProcessPool` over `deno run` child processes, with
 * per-child permissions and crash isolation. The same tasks, futures and
 * errors as threads.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProcessPool } from "@parallel/core/processes";
 * await using pool = new ProcessPool({ maxWorkers: 2 });
 * assert.equal(await pool.submit((a: number, b: number) => a + b, 2, 3), 5);
 * ```
 *
 * @module
 */

export { Process, type ProcessOptions } from "./process.ts";
export { ProcessPool, type ProcessPoolOptions } from "./process_pool.ts";
export type { Permissions, PermissionValue } from "./_permissions.ts";
export type { MapOptions } from "../internal/maps.ts";
export type { Trace, TraceEvent, TraceOutcome } from "../internal/trace.ts";
export type { JoinOptions } from "../internal/solo.ts";
export type { ChildOptions } from "./_transport.ts";
export { type Pool, type PoolOptions, type PoolStats, type TaskOptions } from "../internal/pool.ts";
export { asCompleted, type ReturnWhen, Task, wait, type WaitResult } from "../futures.ts";
export {
  currentProcess,
  currentTask,
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
export { type CellType, type CellValue, Value } from "./value.ts";
export { SharedArray } from "./shared_array.ts";
export { Mutex } from "../sync/mutex.ts";
export type { WaitOptions } from "../internal/wait.ts";
export type { Lease } from "../sync/_shared.ts";
