/**
 * `Process`: Python's `multiprocessing.Process`, one task in its own `deno
 * run` child process, with its own memory, heap limit and permissions.
 *
 * @module
 */

import { type JoinOptions, Solo } from "../internal/solo.ts";
import type { TaskFunction } from "../tasks.ts";
import type { PoolOptions } from "../internal/pool.ts";
import {
  checkChildOptions,
  CHILD_OPTIONS,
  type ChildOptions,
  childStatus,
  GUARD_AT_ONCE,
} from "./_transport.ts";
import { checkOptionNames } from "../internal/options.ts";

/**
 * What a {@linkcode Process} runs, and how its child starts (permissions,
 * environment, working directory, heap limit).
 */
export interface ProcessOptions<A extends unknown[], R> extends ChildOptions {
  /** The function to run: a `TaskRef` from `tasks()`, or a self-contained function. */
  target: TaskFunction<A, R>;
  /** Its arguments, serialized with `node:v8` (Map, Set, Date, BigInt, typed arrays cross). */
  args?: A;
  /** The process's name, as `currentProcess().name` sees it. Default: `"Process-N"`. */
  name?: string;
}

/**
 * Runs one function in a new child process, like Python's
 * `multiprocessing.Process`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Process } from "@parallel/core";
 * const child = new Process({ target: (n: number) => n * 2, args: [21], name: "doubler" });
 * child.start();
 * assert.ok(child.pid !== null && child.pid > 0);
 * assert.equal(await child.join(), 42);
 * assert.equal(child.exitCode, 0);
 * ```
 */
export class Process<A extends unknown[] = unknown[], R = unknown> {
  readonly #solo: Solo<A, R>;

  /**
   * Creates a process; `start()` runs it.
   *
   * @param options `target`, `args`, `name`, and how the child starts:
   *   `permissions`, `env`, `clearEnv`, `cwd`, `maxHeapMB`.
   * @throws {TypeError} When `target` is missing, `args` is not an array, an
   *   option is unknown, or `permissions` asks for more than this program has.
   */
  constructor(options: ProcessOptions<A, R>) {
    const { target, args, name, ...childOptions } = options;
    checkOptionNames(childOptions, CHILD_OPTIONS, "Cannot create Process");
    checkChildOptions(childOptions, "Cannot create Process");
    const rest = { target, args, name };
    // Its one job may never yield: its child guards against an orphaned life before it starts.
    const config = { ...childOptions, [GUARD_AT_ONCE]: true };
    this.#solo = new Solo("process", "Process", rest, [], config as PoolOptions);
  }

  /** The process's name. */
  get name(): string {
    return this.#solo.name;
  }

  /** Whether the process has started and its target has not yet settled. */
  get isAlive(): boolean {
    return this.#solo.isAlive;
  }

  /** The child's process id once started, else `null`. */
  get pid(): number | null {
    return this.#status()?.pid ?? null;
  }

  /** The child's exit code once it has exited with one, else `null`. */
  get exitCode(): number | null {
    return this.#status()?.exitCode ?? null;
  }

  /** The name of the signal that ended the child (`"SIGKILL"`), else `null`. */
  get signal(): string | null {
    return this.#status()?.signal ?? null;
  }

  #status() {
    const handle = this.#solo.handle;
    return handle === undefined ? undefined : childStatus(handle);
  }

  /**
   * Starts the process. A process can be started once.
   *
   * @returns This process.
   * @throws {Error} When it was already started.
   */
  start(): this {
    this.#solo.start();
    return this;
  }

  /**
   * Waits for the target to finish and returns its value.
   *
   * @returns The target's return value (`undefined` if the target ended the
   *   process with `Deno.exit(0)`, a normal end as Python's `sys.exit(0)`).
   *   Rejects with its error, `WorkerCrashedError` (with `exitCode` and
   *   `signal`) if the process ended first in any other way, `CancelledError`
   *   after `terminate()`, or an error if it was never started.
   *   With `timeout`, rejects with `TimeoutError` when the time runs out; the
   *   process keeps running (as with Python's `join(timeout)`).
   *
   * @example Wait at most a while
   * ```ts
   * import assert from "node:assert/strict";
   * import { Process, TimeoutError } from "@parallel/core";
   * const slow = new Process({
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
   * Stops the process at once (SIGKILL): `join()` rejects with `CancelledError`.
   *
   * @returns A promise that resolves once the process has ended.
   */
  async terminate(): Promise<void> {
    const ended = this.#solo.terminate();
    // At once: a target that would answer the cancel within the pool's grace is not waited for.
    const status = this.#status();
    if (status !== undefined && status.exitCode === null && status.signal === null) {
      try {
        status.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await ended;
  }

  /**
   * Sends a signal to the process. If it ends the process before the target
   * returns, `join()` rejects with `WorkerCrashedError` naming the signal.
   *
   * @param signal The signal to send. Default `"SIGTERM"`.
   * @throws {Error} When the process was never started.
   */
  kill(signal?: Deno.Signal): void {
    signal ??= "SIGTERM";
    const status = this.#status();
    if (status === undefined) {
      throw new Error(`Cannot kill Process "${this.name}": it has not been started`);
    }
    status.kill(signal);
  }
}
