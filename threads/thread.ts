/**
 * `Thread`: Python's `threading.Thread`, one task on its own Web Worker.
 *
 * @module
 */

import { Pool, type WorkerKind } from "../internal/pool.ts";
import type { Task } from "../futures.ts";
import type { TaskFunction } from "../tasks.ts";
import "./_transport.ts";

/** What a {@linkcode Thread} runs. */
export interface ThreadOptions<A extends unknown[], R> {
  /** The function to run: a `TaskRef` from `tasks()`, or a self-contained function. */
  target: TaskFunction<A, R>;
  /** Its arguments. */
  args?: A;
  /** The thread's name, as `currentThread().name` sees it. Default: `"Thread-N"`. */
  name?: string;
}

const counters = new Map<string, number>();

/**
 * Runs one function on a new thread, like Python's `threading.Thread`.
 *
 * @example
 * ```ts
 * import { Thread } from "@parallel/core";
 * const thread = new Thread({ target: (a: number, b: number) => a + b, args: [2, 3] });
 * thread.start();
 * console.log(await thread.join()); // 5
 * ```
 */
export class Thread<A extends unknown[] = unknown[], R = unknown> {
  readonly #kind: WorkerKind;
  readonly #label: string;
  readonly #target: TaskFunction<A, R>;
  readonly #args: A;
  readonly #name: string;
  #pool?: Pool;
  #task?: Task<Awaited<R>>;
  #finished?: Promise<Awaited<R>>;
  #alive = false;

  /**
   * Creates a thread; `start()` runs it.
   *
   * @param options `target`, `args` and `name`.
   * @throws {TypeError} When `target` is missing, `args` is not an array, or an
   *   option is unknown.
   */
  constructor(options: ThreadOptions<A, R>) {
    this.#kind = "thread";
    this.#label = "Thread";
    const where = `Cannot create ${this.#label}`;
    checkRunnerOptions(options, where);
    this.#target = options.target;
    this.#args = (options.args ?? []) as A;
    const number = (counters.get(this.#label) ?? 0) + 1;
    counters.set(this.#label, number);
    this.#name = options.name ?? `${this.#label}-${number}`;
  }

  /** The thread's name. */
  get name(): string {
    return this.#name;
  }

  /** Whether the thread has started and its target has not yet settled. */
  get isAlive(): boolean {
    return this.#alive;
  }

  /**
   * Starts the thread. A thread can be started once.
   *
   * @returns This thread.
   * @throws {Error} When it was already started.
   */
  start(): this {
    if (this.#pool !== undefined) {
      throw new Error(`Cannot start ${this.#label} "${this.#name}": it was already started`);
    }
    const pool = new Pool(this.#kind, { maxWorkers: 1 }, this.#label, this.#name);
    this.#pool = pool;
    this.#alive = true;
    this.#task = pool.submit(this.#target, ...this.#args);
    const finished = this.#task.then(
      async (value): Promise<Awaited<R>> => {
        await this.#end(pool);
        return value;
      },
      async (error) => {
        await this.#end(pool);
        throw error;
      },
    );
    finished.catch(() => {});
    this.#finished = finished;
    return this;
  }

  async #end(pool: Pool): Promise<void> {
    await pool.shutdown();
    this.#alive = false;
  }

  /**
   * Waits for the target to finish and returns its value.
   *
   * @returns The target's return value. Rejects with its error,
   *   `WorkerCrashedError` if the thread died, or `CancelledError` after `terminate()`.
   * @throws {Error} When the thread was never started.
   */
  join(): Promise<Awaited<R>> {
    if (this.#finished === undefined) {
      return Promise.reject(
        new Error(`Cannot join ${this.#label} "${this.#name}": it has not been started`),
      );
    }
    return this.#finished;
  }

  /**
   * Stops the thread: `join()` rejects with `CancelledError` and
   * `currentTask().cancelled` becomes true inside it. Async work is stopped;
   * a synchronous loop runs on until it polls `currentTask().cancelled` or
   * ends (Deno cannot interrupt it).
   *
   * @returns A promise that resolves once the worker has been ended.
   */
  async terminate(): Promise<void> {
    if (this.#task === undefined) return;
    this.#task.cancel();
    await this.#finished?.catch(() => {});
  }
}

/** Checks the options of `Thread` and `Process`. */
export function checkRunnerOptions(
  options: unknown,
  where: string,
  extra: readonly string[] = [],
): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `${where}: options must be an object with a 'target': current value is ${String(options)}`,
    );
  }
  const known = ["target", "args", "name", ...extra];
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new TypeError(
        `${where}: unknown option '${key}'; known options are: ${known.join(", ")}`,
      );
    }
  }
  const { target, args, name } = options as Record<string, unknown>;
  if (target === undefined) throw new TypeError(`${where}: 'target' is required`);
  if (args !== undefined && !Array.isArray(args)) {
    throw new TypeError(`${where}: 'args' must be an array: current value is ${String(args)}`);
  }
  if (name !== undefined && typeof name !== "string") {
    throw new TypeError(`${where}: 'name' must be a string: current value is ${String(name)}`);
  }
}
