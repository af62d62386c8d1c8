/**
 * How a function reaches a worker, and what a running task can learn about
 * itself.
 *
 * - {@linkcode tasks} names the exported functions of a module by URL; the
 *   worker imports the module and calls the export, so closures over module
 *   state and imports work (Python's pickling by reference).
 * - A self-contained inline function travels as source text instead.
 * - {@linkcode currentTask}, {@linkcode currentThread} and
 *   {@linkcode currentProcess} answer from inside a task.
 *
 * @module
 */

import { show } from "./internal/options.ts";

/** A reference to an exported function of a module: what a worker imports and calls. */
export interface TaskRef<A extends unknown[] = any[], R = unknown> {
  /** The module's URL, as given to {@linkcode tasks}. */
  readonly module: string;
  /** The export's name. */
  readonly name: string;
  /** Type-only: the function's parameters and awaited result. */
  readonly __signature?: (...args: A) => R;
}

/** What a pool or thread accepts as a task: a module reference or a self-contained function. */
export type TaskFunction<A extends unknown[], R> =
  | TaskRef<A, R>
  | ((...args: A) => R | PromiseLike<R>);

/** The `TaskRef`s for every exported function of a module type `M`. */
export type TaskRefs<M> = {
  readonly [K in keyof M as M[K] extends (...args: any[]) => unknown ? K : never]: M[K] extends
    (...args: infer A) => infer R ? TaskRef<A, Awaited<R>> : never;
};

/**
 * Names the exported functions of a module so that workers can import and run
 * them. Pass the module's type to get typed references.
 *
 * @example
 * ```ts ignore
 * import { tasks, ThreadPool } from "@parallel/core";
 * const work = tasks<typeof import("./work.ts")>(new URL("./work.ts", import.meta.url));
 * await using pool = new ThreadPool({ maxWorkers: 2 });
 * const n: number = await pool.submit(work.fib, 20);
 * ```
 *
 * @param url The module's URL: a `URL` or an absolute URL string.
 * @returns An object whose members are `TaskRef`s named after the exports.
 * @throws {TypeError} When `url` is not an absolute URL.
 */
export function tasks<M>(url: URL | string): TaskRefs<M> {
  let module: string;
  try {
    module = new URL(url).href;
  } catch {
    throw new TypeError(
      `Cannot create tasks: 'url' must be an absolute URL such as new URL("./work.ts", import.meta.url): current value is ${
        show(url)
      }`,
    );
  }
  const refs = new Map<string, TaskRef>();
  return new Proxy({} as TaskRefs<M>, {
    get(_target, name) {
      if (typeof name !== "string" || name === "then") return undefined;
      let ref = refs.get(name);
      if (ref === undefined) {
        ref = Object.freeze({ module, name });
        refs.set(name, ref);
      }
      return ref;
    },
  });
}

/** Whether `value` is a {@linkcode TaskRef}. */
export function isTaskRef(value: unknown): value is TaskRef {
  return typeof value === "object" && value !== null &&
    typeof (value as TaskRef).module === "string" && typeof (value as TaskRef).name === "string";
}

/** What a running task can learn about its own cancellation. */
export interface TaskContext {
  /**
   * Whether the task was cancelled or timed out. Read from shared memory, so a
   * synchronous loop can poll it and stop early.
   */
  readonly cancelled: boolean;
  /** Aborted when the task is cancelled or times out, for async work. */
  readonly signal: AbortSignal;
}

/** The name and id of the thread or process running the caller. */
export interface WorkerIdentity {
  /** The thread's or process's name (`"MainThread"` / `"MainProcess"` outside a worker). */
  readonly name: string;
  /** A number unique within the pool or program; 0 for the main thread or process. */
  readonly id: number;
}

/**
 * Where the runner publishes the current task and worker: on `globalThis`
 * under registered symbols, so that every copy of this module (local file,
 * JSR URL) in one isolate reads the same state.
 */
export const CURRENT_TASK: unique symbol = Symbol.for("@parallel/core.currentTask") as never;
/** See {@linkcode CURRENT_TASK}. */
export const CURRENT_WORKER: unique symbol = Symbol.for("@parallel/core.currentWorker") as never;

interface RunnerGlobals {
  [CURRENT_TASK]?: TaskContext;
  [CURRENT_WORKER]?: WorkerIdentity & { kind: "thread" | "process" };
}

const idle: TaskContext = Object.freeze({ cancelled: false, signal: new AbortController().signal });

/**
 * The cancellation state of the task that is running now. Outside a task it
 * returns a context that is never cancelled, so the same function can run
 * directly or in a pool. In a pool with `concurrentTasksPerWorker` above 1,
 * read it before the task's first `await` and keep it: after an await,
 * another task of the same worker may be the current one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { currentTask } from "@parallel/core";
 * export function count(limit: number): number {
 *   let i = 0;
 *   while (i < limit && !currentTask().cancelled) i++;
 *   return i;
 * }
 * assert.deepEqual(count(1000), 1000);
 * ```
 *
 * @returns The running task's context.
 */
export function currentTask(): TaskContext {
  return (globalThis as RunnerGlobals)[CURRENT_TASK] ?? idle;
}

/**
 * The name and id of the thread running the caller: a pool worker's or a
 * `Thread`'s name inside one, `{ name: "MainThread", id: 0 }` outside.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { currentThread } from "@parallel/core";
 * assert.deepEqual(currentThread().name, "MainThread");
 * ```
 *
 * @returns The thread's name and id.
 */
export function currentThread(): WorkerIdentity {
  const worker = (globalThis as RunnerGlobals)[CURRENT_WORKER];
  return worker?.kind === "thread"
    ? { name: worker.name, id: worker.id }
    : { name: "MainThread", id: 0 };
}

/**
 * The name and id of the process running the caller: a pool process's or a
 * `Process`'s name inside one, `{ name: "MainProcess", id: 0 }` outside.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { currentProcess } from "@parallel/core";
 * assert.deepEqual(currentProcess().name, "MainProcess");
 * ```
 *
 * @returns The process's name and id.
 */
export function currentProcess(): WorkerIdentity {
  const worker = (globalThis as RunnerGlobals)[CURRENT_WORKER];
  return worker?.kind === "process"
    ? { name: worker.name, id: worker.id }
    : { name: "MainProcess", id: 0 };
}
