/**
 * `Thread`: Python's `threading.Thread`, one task on its own Web Worker.
 *
 * @module
 */

import { type JoinOptions, Solo } from "../internal/solo.ts";
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

/**
 * Runs one function on a new thread, like Python's `threading.Thread`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Thread } from "@parallel/core";
 * const thread = new Thread({ target: (a: number, b: number) => a + b, args: [2, 3] });
 * thread.start();
 * assert.deepEqual(await thread.join(), 5);
 * ```
 */
export class Thread<A extends unknown[] = unknown[], R = unknown> {
  readonly #solo: Solo<A, R>;

  /**
   * Creates a thread; `start()` runs it.
   *
   * @param options `target`, `args` and `name`.
   * @throws {TypeError} When `target` is missing, `args` is not an array, or an
   *   option is unknown.
   */
  constructor(options: ThreadOptions<A, R>) {
    this.#solo = new Solo("thread", "Thread", options);
  }

  /** The thread's name. */
  get name(): string {
    return this.#solo.name;
  }

  /** Whether the thread has started and its target has not yet settled. */
  get isAlive(): boolean {
    return this.#solo.isAlive;
  }

  /**
   * Starts the thread. A thread can be started once.
   *
   * @returns This thread.
   * @throws {Error} When it was already started.
   */
  start(): this {
    this.#solo.start();
    return this;
  }

  /**
   * Waits for the target to finish and returns its value.
   *
   * @returns The target's return value (`undefined` if the target called
   *   `Deno.exit(0)`, a normal end as Python's `sys.exit(0)`). Rejects with
   *   its error, `WorkerCrashedError` if the thread died any other way,
   *   `CancelledError` after `terminate()`, or an error if the thread was never started.
   *   With `timeout`, rejects with `TimeoutError` when the time runs out; the
   *   thread keeps running (as with Python's `join(timeout)`).
   *
   * @example Wait at most a while
   * ```ts
   * import assert from "node:assert/strict";
   * import { Thread, TimeoutError } from "@parallel/core";
   * const slow = new Thread({
   *   target: (ms: number) => new Promise((resolve) => setTimeout(resolve, ms)),
   *   args: [300],
   * }).start();
   * await assert.rejects(slow.join({ timeout: 10 }), TimeoutError);
   * assert.equal(slow.isAlive, true);
   * await slow.join();
   * ```
   *
   * @param options `timeout` in milliseconds (default: no limit).
   */
  join(options?: JoinOptions): Promise<Awaited<R>> {
    return this.#solo.join(options);
  }

  /**
   * Stops the thread: `join()` rejects with `CancelledError` and
   * `currentTask().cancelled` becomes true inside it. Async work is stopped;
   * a synchronous loop runs on until it polls `currentTask().cancelled` or
   * ends (Deno cannot interrupt it).
   *
   * @returns A promise that resolves once the worker has been ended.
   */
  terminate(): Promise<void> {
    return this.#solo.terminate();
  }
}
