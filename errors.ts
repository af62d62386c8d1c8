/**
 * The error classes of `@parallel/core`. Every failure that is not the task's
 * own error is one of these, so callers can tell them apart with `instanceof`
 * or by `name`.
 *
 * @module
 */

/**
 * A wait ran out of time: a task's `timeout`, or the `timeout` option of a
 * call that waits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TimeoutError } from "@parallel/core";
 * const error = new TimeoutError("Task timed out after 10 ms");
 * assert.deepEqual(error.name, "TimeoutError");
 * ```
 */
export class TimeoutError extends Error {
  /**
   * Creates a timeout error.
   *
   * @param message What timed out, and after how long.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TimeoutError";
  }
}

/**
 * A task was cancelled, by `Task.cancel()`, its `signal`, or a
 * `shutdown({ cancelPending: true })`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CancelledError } from "@parallel/core";
 * assert.deepEqual(new CancelledError("Task 3 was cancelled").name, "CancelledError");
 * ```
 */
export class CancelledError extends Error {
  /**
   * Creates a cancellation error.
   *
   * @param message Which task was cancelled, and how.
   * @param options Standard error options (`cause`: the abort reason, if any).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CancelledError";
  }
}

/** What {@linkcode WorkerCrashedError} knows about the crash. */
export interface WorkerCrashedErrorInit {
  /** The id of the task that was running, if one was. */
  taskId?: number;
  /** The name of the worker (thread or process) that died. */
  workerName: string;
  /** The exit code, when the worker ended with one; `null` otherwise. */
  exitCode: number | null;
  /** The signal name (`"SIGKILL"`), when a signal ended it; `null` otherwise. */
  signal: string | null;
  /** The error that ended the worker, when there was one. */
  cause?: unknown;
}

/**
 * The worker (thread or process) running a task died before the task
 * finished. Only the tasks on that worker fail; the pool replaces it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WorkerCrashedError } from "@parallel/core";
 * const error = new WorkerCrashedError({
 *   workerName: "ThreadPool-1-worker-1",
 *   exitCode: 3,
 *   signal: null,
 * });
 * assert.equal(error.message, 'Worker "ThreadPool-1-worker-1" exited with code 3');
 * ```
 */
export class WorkerCrashedError extends Error {
  /** The id of the task that was running, if one was. */
  readonly taskId: number | undefined;
  /** The name of the worker that died. */
  readonly workerName: string;
  /** The exit code, or `null` when it ended without one. */
  readonly exitCode: number | null;
  /** The name of the signal that ended it, or `null`. */
  readonly signal: string | null;

  /**
   * Creates the error from what is known about the crash.
   *
   * @param init The task, the worker, and how it ended.
   */
  constructor(init: WorkerCrashedErrorInit) {
    const how = init.signal !== null
      ? `was killed by ${init.signal}`
      : init.exitCode !== null
      ? `exited with code ${init.exitCode}`
      : "died";
    const task = init.taskId === undefined ? "" : ` while running task ${init.taskId}`;
    super(`Worker "${init.workerName}" ${how}${task}`, { cause: init.cause });
    this.name = "WorkerCrashedError";
    this.taskId = init.taskId;
    this.workerName = init.workerName;
    this.exitCode = init.exitCode;
    this.signal = init.signal;
  }
}

/**
 * An argument or a result could not cross to the other side (a function, a
 * class instance with private state, a socket…). The message names which one
 * and why.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SerializationError } from "@parallel/core";
 * const error = new SerializationError("Cannot send argument 0 of task f: a function");
 * assert.deepEqual(error.name, "SerializationError");
 * ```
 */
export class SerializationError extends Error {
  /**
   * Creates a serialization error.
   *
   * @param message What could not be sent and why.
   * @param options Standard error options (`cause`: the underlying error).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SerializationError";
  }
}

/**
 * A pool cannot run tasks any more: its `initializer` failed in a worker, so
 * every waiting task and every later submission fails with this error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BrokenPoolError } from "@parallel/core";
 * assert.deepEqual(new BrokenPoolError("initializer failed").name, "BrokenPoolError");
 * ```
 */
export class BrokenPoolError extends Error {
  /**
   * Creates a broken-pool error.
   *
   * @param message Why the pool cannot take the task.
   * @param options Standard error options (`cause`: the initializer's error).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BrokenPoolError";
  }
}

/**
 * A `Barrier` was broken: a waiter timed out or was aborted, or `abort()` was
 * called, so every party waiting on it (and every later `wait`) fails.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BrokenBarrierError } from "@parallel/core";
 * assert.deepEqual(new BrokenBarrierError("barrier broken").name, "BrokenBarrierError");
 * ```
 */
export class BrokenBarrierError extends Error {
  /**
   * Creates a broken-barrier error.
   *
   * @param message How the barrier was broken.
   * @param options Standard error options.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BrokenBarrierError";
  }
}

/**
 * A `put` on a closed queue, or a `get` on a queue that is closed and empty.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { QueueClosedError } from "@parallel/core";
 * assert.deepEqual(new QueueClosedError("queue closed").name, "QueueClosedError");
 * ```
 */
export class QueueClosedError extends Error {
  /**
   * Creates a queue-closed error.
   *
   * @param message Which operation met the closed queue.
   * @param options Standard error options.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "QueueClosedError";
  }
}
