/**
 * One task on one dedicated worker: the engine of `Thread` and `Process`. It
 * is a pool of exactly one worker, named after the thread or process, that is
 * shut down as soon as its task settles.
 *
 * @module
 */

import { cancelTask, type Task } from "../futures.ts";
import { TimeoutError, WorkerCrashedError } from "../errors.ts";
import type { TaskFunction } from "../tasks.ts";
import {
  Pool,
  type PoolOptions,
  type WorkerHandle,
  workerHandles,
  type WorkerKind,
} from "./pool.ts";
import { checkArray, checkOptionNames, show } from "./options.ts";
import { toFnSpec } from "./functions.ts";
import { checkTimeout } from "./wait.ts";

/** What `Thread` and `Process` take. */
export interface SoloOptions<A extends unknown[], R> {
  target: TaskFunction<A, R>;
  args?: A;
  name?: string;
}

/** What `Thread.join()` and `Process.join()` take. */
export interface JoinOptions {
  /**
   * Milliseconds to wait; then `join()` rejects with `TimeoutError` and the
   * thread or process keeps running. Default: no limit.
   */
  timeout?: number;
}

const counters = new Map<string, number>();

/** Runs one target on its own worker. */
export class Solo<A extends unknown[], R> {
  readonly name: string;
  readonly #kind: WorkerKind;
  readonly #label: string;
  readonly #target: TaskFunction<A, R>;
  readonly #args: A;
  readonly #poolOptions: PoolOptions;
  #pool?: Pool;
  #handle?: WorkerHandle;
  #task?: Task<Awaited<R>>;
  #finished?: Promise<Awaited<R>>;
  #alive = false;

  constructor(
    kind: WorkerKind,
    label: string,
    options: SoloOptions<A, R>,
    extraOptions: readonly string[] = [],
    poolOptions: PoolOptions = {},
  ) {
    const where = `Cannot create ${label}`;
    checkOptions(options, where, extraOptions);
    toFnSpec(options.target, `${where}: 'target'`);
    this.#kind = kind;
    this.#label = label;
    this.#target = options.target;
    this.#args = (options.args ?? []) as A;
    this.#poolOptions = poolOptions;
    if (options.name === undefined) {
      const number = (counters.get(label) ?? 0) + 1;
      counters.set(label, number);
      this.name = `${label}-${number}`;
    } else {
      this.name = options.name;
    }
  }

  get isAlive(): boolean {
    return this.#alive;
  }

  /** The worker's handle once started (a process's pid and status hang off it). */
  get handle(): WorkerHandle | undefined {
    return this.#handle;
  }

  start(): void {
    if (this.#pool !== undefined) {
      throw new Error(`Cannot start ${this.#label} "${this.name}": it was already started`);
    }
    const pool = new Pool(
      this.#kind,
      { ...this.#poolOptions, maxWorkers: 1, minWorkers: 1 },
      this.#label,
      this.name,
    );
    try {
      this.#task = pool.submit(this.#target, ...this.#args);
    } catch (error) {
      // Nothing may be left running: the pool's one worker goes with it.
      pool.shutdown({ cancelPending: true });
      throw error;
    }
    this.#pool = pool;
    this.#handle = workerHandles(pool)[0];
    this.#alive = true;
    const end = async () => {
      await pool.shutdown();
      this.#alive = false;
    };
    const finished = this.#task.then(
      async (value): Promise<Awaited<R>> => {
        await end();
        return value;
      },
      async (error): Promise<Awaited<R>> => {
        await end();
        // As Python's sys.exit(0) in a target: ending with code 0 is a normal end.
        if (error instanceof WorkerCrashedError && error.exitCode === 0) {
          return undefined as Awaited<R>;
        }
        throw error;
      },
    );
    finished.catch(() => {});
    this.#finished = finished;
  }

  join(options?: JoinOptions): Promise<Awaited<R>> {
    const where = `${this.#label}.join`;
    checkOptionNames(options ?? {}, ["timeout"], where);
    const timeout = checkTimeout(options?.timeout, where);
    const finished = this.#finished;
    if (finished === undefined) {
      return Promise.reject(
        new Error(`Cannot join ${this.#label} "${this.name}": it has not been started`),
      );
    }
    if (timeout === Infinity) return finished;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new TimeoutError(
            `${this.#label} "${this.name}" did not end within ${timeout} ms (it keeps running)`,
          ),
        );
      }, timeout);
      finished.then(resolve, reject).finally(() => clearTimeout(timer));
    });
  }

  async terminate(): Promise<void> {
    if (this.#task === undefined) return;
    cancelTask(this.#task, "terminate() was called");
    await this.#finished?.catch(() => {});
  }
}

function checkOptions(options: unknown, where: string, extra: readonly string[]): void {
  checkOptionNames(options, ["target", "args", "name", ...extra], where);
  const { target, args, name } = options as Record<string, unknown>;
  if (target === undefined) throw new TypeError(`${where}: 'target' is required`);
  if (args !== undefined) checkArray(args, "args", where);
  if (name !== undefined && typeof name !== "string") {
    throw new TypeError(`${where}: 'name' must be a string: current value is ${show(name)}`);
  }
}
