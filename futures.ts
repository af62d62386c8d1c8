/**
 * `Task<R>`, the handle on a submitted task (Python's `Future`), and the two
 * ways to wait on many: {@linkcode asCompleted} and {@linkcode wait}.
 *
 * @module
 */

import { show } from "./internal/options.ts";
import { TimeoutError } from "./errors.ts";
import { checkTimeout } from "./internal/wait.ts";
import { describeType } from "./internal/codec.ts";

let settle: (
  task: Task<any>,
  state: "fulfilled" | "rejected",
  outcome: unknown,
  cancelled: boolean,
) => void;

/** Fulfils a task (ignored once it has settled). Private to the library. */
export function resolveTask<R>(task: Task<R>, value: R): void {
  settle(task, "fulfilled", value, false);
}

/** Fails a task (ignored once it has settled). Private to the library. */
export function rejectTask(task: Task<any>, error: unknown, cancelled = false): void {
  settle(task, "rejected", error, cancelled);
}

let cancelWith: (task: Task<any>, why: string) => boolean;
let listen: (task: Task<any>, listener: () => void) => void;
let rejected: (task: Task<any>) => boolean;

/** Calls `listener` once `task` settles (at once if it has). Private to the library. */
export function onSettled(task: Task<any>, listener: () => void): void {
  listen(task, listener);
}

/** Whether `task` failed (including cancellation). Private to the library. */
function failed(task: Task<any>): boolean {
  return rejected(task);
}

/** Cancels a task, saying why in its `CancelledError` (`"terminate() was called"`). Private to the library. */
export function cancelTask(task: Task<any>, why: string): boolean {
  return cancelWith(task, why);
}

/**
 * A task submitted to a pool: awaitable like a promise, and cancellable.
 * Only pools create tasks.
 *
 * A task that fails and is never awaited does not become an unhandled
 * rejection, as with Python's futures: its error waits until someone asks
 * (`await`, `then`, `catch`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ThreadPool } from "@parallel/core";
 * await using pool = new ThreadPool({ maxWorkers: 1 });
 * const task = pool.submit((x: number) => x * 2, 21);
 * assert.equal(await task, 42);
 * assert.equal(task.done, true);
 * ```
 */
export class Task<R> implements PromiseLike<R> {
  /** A number unique within the program, shown in error messages. */
  readonly id: number;
  // Made on the first then(): until someone asks, a failure is not an
  // unhandled rejection, as with an unawaited Python future.
  // Typed loosely so that Task<R> is covariant in R (a Task<never> is a Task<number>).
  #promise?: Promise<any>;
  #resolve?: (value: any) => void;
  #reject?: (error: unknown) => void;
  #outcome: unknown;
  #state: "pending" | "fulfilled" | "rejected" = "pending";
  #cancelled = false;
  readonly #onCancel: (why?: string) => boolean;
  readonly #isRunning?: () => boolean;
  #listeners?: (() => void)[];

  static {
    settle = (task, state, outcome, cancelled) => task.#settle(state, outcome, cancelled);
    cancelWith = (task, why) => task.#state === "pending" && task.#onCancel(why);
    listen = (task, listener) => {
      if (task.#state !== "pending") listener();
      else (task.#listeners ??= []).push(listener);
    };
    rejected = (task) => task.#state === "rejected";
  }

  /**
   * Not for users: pools create tasks with their `submit()`.
   *
   * @param id The task's id.
   * @param onCancel Asks the pool to cancel the task.
   * @param isRunning Asks the pool whether a worker has started the task.
   */
  constructor(id: number, onCancel: (why?: string) => boolean, isRunning?: () => boolean) {
    this.id = id;
    this.#onCancel = onCancel;
    this.#isRunning = isRunning;
  }

  #settled(): Promise<R> {
    if (this.#promise === undefined) {
      if (this.#state === "fulfilled") this.#promise = Promise.resolve(this.#outcome as R);
      else if (this.#state === "rejected") this.#promise = Promise.reject(this.#outcome);
      else {
        this.#promise = new Promise<R>((resolve, reject) => {
          this.#resolve = resolve;
          this.#reject = reject;
        });
      }
    }
    return this.#promise;
  }

  #settle(state: "fulfilled" | "rejected", outcome: unknown, cancelled = false): void {
    if (this.#state !== "pending") return;
    this.#state = state;
    this.#cancelled = cancelled;
    this.#outcome = outcome;
    if (state === "fulfilled") this.#resolve?.(outcome as R);
    else this.#reject?.(outcome);
    const listeners = this.#listeners;
    if (listeners === undefined) return;
    this.#listeners = undefined;
    for (const listener of listeners) listener();
  }

  /** Whether the task has settled: returned, failed, or been cancelled. */
  get done(): boolean {
    return this.#state !== "pending";
  }

  /** Whether the task was cancelled (by `cancel()`, its signal, or a shutdown). */
  get cancelled(): boolean {
    return this.#cancelled;
  }

  /**
   * Whether a worker is running the task now (Python's `Future.running()`):
   * `false` while it waits for a worker or is held by one that has not
   * started it, and once it has settled.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ThreadPool } from "@parallel/core";
   * await using pool = new ThreadPool({ maxWorkers: 1 });
   * const task = pool.submit((ms: number) => new Promise((r) => setTimeout(r, ms)), 100);
   * assert.equal(task.running, false); // not sent yet
   * while (!task.running) await new Promise((r) => setTimeout(r, 5));
   * await task;
   * assert.equal(task.running, false);
   * ```
   */
  get running(): boolean {
    return this.#state === "pending" && (this.#isRunning?.() ?? false);
  }

  /**
   * Calls `callback(task)` once the task settles — at once if it already has
   * — as Python's `Future.add_done_callback` does. Callbacks run in the order
   * they were added. One that throws (or whose promise rejects) is reported
   * on stderr and does not disturb the others; a failed task never becomes an
   * unhandled rejection through a callback (ask `await task` inside it, with
   * a `try`, for its error).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ThreadPool } from "@parallel/core";
   * await using pool = new ThreadPool({ maxWorkers: 1 });
   * const seen: string[] = [];
   * const fails = pool.submit(() => { throw new Error("no"); });
   * fails.addDoneCallback((task) => seen.push(task.done ? "done" : "not done"));
   * await fails.catch(() => {});
   * assert.deepEqual(seen, ["done"]);
   * fails.addDoneCallback(() => seen.push("at once"));
   * assert.equal(seen.at(-1), "at once");
   * ```
   *
   * @param callback Called with this task once it has settled.
   * @throws {TypeError} When `callback` is not a function.
   */
  addDoneCallback(callback: (task: this) => unknown): void {
    if (typeof callback !== "function") {
      throw new TypeError(
        `Task.addDoneCallback: 'callback' must be a function: current value is ${show(callback)}`,
      );
    }
    const report = (error: unknown) =>
      console.error(`A done callback of task ${this.id} failed:`, error);
    listen(this, () => {
      try {
        const result = callback(this);
        if (result instanceof Promise) result.catch(report);
      } catch (error) {
        report(error);
      }
    });
  }

  /**
   * Cancels the task; it fails at once with `CancelledError`. What happens
   * to the work:
   *
   * - waiting in the pool's queue: removed;
   * - held by a worker that has not started it: a thread never starts it; a
   *   child process is told and skips it (if the child had started it
   *   before it read the cancel, it is stopped as a running task). The
   *   worker and every other task are untouched;
   * - running in a thread: the task sees `currentTask().cancelled` become
   *   true, and the thread is replaced (it ends when the task does);
   * - running in a child process: the task sees `currentTask().cancelled`,
   *   and the child is replaced; if the task has not ended 100 ms later the
   *   child is killed and the other tasks it held run elsewhere.
   *
   * @returns `true` if the task was cancelled, `false` if it had already settled.
   */
  cancel(): boolean {
    if (this.#state !== "pending") return false;
    return this.#onCancel();
  }

  /**
   * Attaches callbacks as `Promise.prototype.then` does.
   *
   * @param onFulfilled Called with the task's result.
   * @param onRejected Called with the task's error.
   * @returns A promise for the callback's result.
   */
  then<T1 = R, T2 = never>(
    onFulfilled?: ((value: R) => T1 | PromiseLike<T1>) | null,
    onRejected?: ((reason: unknown) => T2 | PromiseLike<T2>) | null,
  ): Promise<T1 | T2> {
    return this.#settled().then(onFulfilled, onRejected);
  }

  /**
   * Attaches a failure callback as `Promise.prototype.catch` does.
   *
   * @param onRejected Called with the task's error.
   * @returns A promise for the result or the callback's result.
   */
  catch<T = never>(onRejected?: ((reason: unknown) => T | PromiseLike<T>) | null): Promise<R | T> {
    return this.#settled().catch(onRejected);
  }

  /**
   * Attaches a callback for either outcome, as `Promise.prototype.finally` does.
   *
   * @param onFinally Called once the task settles.
   * @returns A promise that settles as the task does.
   */
  finally(onFinally?: (() => void) | null): Promise<R> {
    return this.#settled().finally(onFinally);
  }
}

/**
 * Yields each task as it settles, first finished first, like Python's
 * `concurrent.futures.as_completed`. Await the yielded task for its result.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { asCompleted, ThreadPool } from "@parallel/core";
 * await using pool = new ThreadPool({ maxWorkers: 2 });
 * const sleepy = (ms: number) => new Promise<number>((r) => setTimeout(() => r(ms), ms));
 * const quick = pool.submit((x: number) => x, 1);
 * await quick;
 * const order: number[] = [];
 * for await (const task of asCompleted([pool.submit(sleepy, 50), quick])) order.push(await task);
 * assert.deepEqual(order, [1, 50]); // the settled task first
 * ```
 *
 * @param tasks The tasks to watch.
 * @param options `timeout`: milliseconds until the iterator throws `TimeoutError`
 *   if tasks are still unfinished.
 * @returns An async iterator over the tasks in completion order.
 * @throws {TimeoutError} When the time runs out before every task settles.
 */
export function asCompleted<T extends Task<any>>(
  tasks: Iterable<T>,
  options?: { timeout?: number },
): AsyncIterableIterator<T> {
  const timeout = checkTimeout(options?.timeout, "asCompleted");
  const unique = onlyTasks(tasks, "asCompleted");
  const settled: T[] = [];
  let wake: (() => void) | undefined;
  let yielded = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  for (const task of unique) {
    onSettled(task, () => {
      settled.push(task);
      wake?.();
    });
  }
  const stop = (): IteratorResult<T> => {
    clearTimeout(timer);
    yielded = unique.length;
    return { value: undefined, done: true };
  };
  // A hand-written iterator: an async generator would await each yielded
  // task, since a Task is a thenable, and yield its value instead.
  const iterator: AsyncIterableIterator<T> = {
    async next(): Promise<IteratorResult<T>> {
      if (yielded >= unique.length) return stop();
      if (timer === undefined && timeout !== Infinity) {
        timer = setTimeout(() => {
          timedOut = true;
          wake?.();
        }, timeout);
      }
      while (settled.length === 0) {
        if (timedOut) {
          const left = unique.length - yielded;
          stop();
          throw new TimeoutError(
            `asCompleted: ${left} of ${unique.length} tasks unfinished after ${timeout} ms`,
          );
        }
        await new Promise<void>((resolve) => wake = resolve);
        wake = undefined;
      }
      yielded++;
      if (yielded === unique.length) clearTimeout(timer);
      return { value: settled.shift()!, done: false };
    },
    return(): Promise<IteratorResult<T>> {
      return Promise.resolve(stop());
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

/** When {@linkcode wait} returns. */
export type ReturnWhen = "FIRST_COMPLETED" | "FIRST_EXCEPTION" | "ALL_COMPLETED";

/** The result of {@linkcode wait}: the tasks that settled and those still running. */
export interface WaitResult<T> {
  /** Tasks that have settled. */
  done: Set<T>;
  /** Tasks still waiting or running. */
  pending: Set<T>;
}

/**
 * Waits until some or all tasks settle, like Python's
 * `concurrent.futures.wait`. Never throws a task's error: look in `done`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ThreadPool, wait } from "@parallel/core";
 * await using pool = new ThreadPool({ maxWorkers: 2 });
 * const tasks = [pool.submit((x: number) => x + 1, 1), pool.submit((x: number) => x + 1, 2)];
 * const { done, pending } = await wait(tasks, { returnWhen: "ALL_COMPLETED" });
 * assert.equal(done.size, 2);
 * assert.equal(pending.size, 0);
 * ```
 *
 * @param tasks The tasks to wait on.
 * @param options `returnWhen` (default `"ALL_COMPLETED"`) and `timeout` in
 *   milliseconds, after which it returns whatever has settled.
 * @returns The settled and the pending tasks.
 * @throws {RangeError} When `returnWhen` or `timeout` is not valid.
 */
export function wait<T extends Task<any>>(
  tasks: Iterable<T>,
  options?: { returnWhen?: ReturnWhen; timeout?: number },
): Promise<WaitResult<T>> {
  const returnWhen = options?.returnWhen ?? "ALL_COMPLETED";
  if (!["FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED"].includes(returnWhen)) {
    throw new RangeError(
      `wait: 'returnWhen' must be "FIRST_COMPLETED", "FIRST_EXCEPTION" or "ALL_COMPLETED": current value is ${
        show(returnWhen)
      }`,
    );
  }
  const timeout = checkTimeout(options?.timeout, "wait");
  const all = onlyTasks(tasks, "wait");
  const finished = (): boolean => {
    const done = all.filter((task) => task.done);
    if (done.length === all.length) return true;
    if (returnWhen === "FIRST_COMPLETED") return done.length > 0;
    // As in Python, a cancelled task is done but raised no exception.
    if (returnWhen === "FIRST_EXCEPTION") {
      return done.some((task) => failed(task) && !task.cancelled);
    }
    return false;
  };
  const split = (): WaitResult<T> => ({
    done: new Set(all.filter((task) => task.done)),
    pending: new Set(all.filter((task) => !task.done)),
  });
  if (finished()) return Promise.resolve(split());
  return new Promise((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      resolve(split());
    };
    if (timeout !== Infinity) timer = setTimeout(end, timeout);
    for (const task of all) onSettled(task, () => finished() && end());
  });
}

/** The distinct tasks in `tasks`; throws a `TypeError` naming the first item that is not a `Task`. */
function onlyTasks<T>(tasks: Iterable<T>, where: string): T[] {
  const all = [...tasks];
  const index = all.findIndex((task) => !(task instanceof Task));
  if (index >= 0) {
    throw new TypeError(
      `${where}: item ${index} is ${describeType(all[index])}, not a Task: it takes the tasks ` +
        `that submit() and apply() return (await a plain promise directly)`,
    );
  }
  return [...new Set(all)];
}
