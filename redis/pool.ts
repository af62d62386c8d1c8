/**
 * `RedisPool`: the pool API with its tasks in Redis, run by workers on any
 * machine (`serveRedisPool`). It is another front on the package's futures
 * and map helpers: tasks are `Task`s, `map` and the `imap`s are the local
 * pools' own (`internal/maps.ts`), only the transport is Redis.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  CancelledError,
  QueueClosedError,
  SerializationError,
  WorkerCrashedError,
} from "../errors.ts";
import { cancelTask, rejectTask, resolveTask, Task } from "../futures.ts";
import { encode, unpackError } from "../internal/codec.ts";
import { fnName, toFnSpec } from "../internal/functions.ts";
import { type Chunks, lazyMap, mapAll, type MapOptions } from "../internal/maps.ts";
import { settledWithin } from "../internal/wait.ts";
import {
  checkArray,
  checkMilliseconds,
  checkOptionNames,
  wholeNumber,
} from "../internal/options.ts";
import type { FnSpec, JobMode } from "../internal/protocol.ts";
import type { TaskFunction } from "../tasks.ts";
import {
  checkServerOptions,
  Connections,
  decode,
  evalScript,
  UnreachableError,
} from "./_connection.ts";
import {
  jobItem,
  poolKeys,
  RECOVER,
  RETURNED,
  SUBMIT,
  SUBMITTED_SECONDS,
  WITHDRAW,
} from "./_protocol.ts";
import { getBatch, RedisQueue } from "./queue.ts";
import { itemToBytes } from "../queue/_ring.ts";

/** Options of a {@linkcode RedisPool}. */
export interface RedisPoolOptions {
  /** The server, as `redis://host:port`. */
  url: string;
  /** The pool's name: its workers serve it by the same URL and name. */
  name: string;
  /**
   * Milliseconds without a sign of life from a worker after which its tasks
   * run again elsewhere. Default: 30,000.
   */
  stalledAfter?: number;
  /** How many times in all a task may be started before it fails with `WorkerCrashedError`. Default: 3. */
  maxAttempts?: number;
}

/** Options of one task ({@linkcode RedisPool.apply}). */
export interface RedisTaskOptions {
  /** Cancels the task when aborted. */
  signal?: AbortSignal;
  /** Milliseconds the task may run on its worker, counted from its start; then `TimeoutError`. */
  timeout?: number;
}

/** What a {@linkcode RedisPool} has done, as this handle saw it. */
export interface RedisPoolStats {
  /** Tasks submitted and not settled. */
  pendingTasks: number;
  /** Tasks that returned. */
  completedTasks: number;
  /** Tasks that failed (their own error, a crash, a timeout). */
  failedTasks: number;
  /** Tasks cancelled. */
  cancelledTasks: number;
}

interface Sent {
  readonly task: Task<unknown>;
  readonly fn: FnSpec;
  readonly detach?: () => void;
}

/** How often a submitter looks for workers that died (and for its own results' queue). */
const RECOVER_EVERY_MS = 1_000;

/**
 * The pool API with its tasks in Redis: `submit`, `apply` (with `timeout`
 * and `signal`), `map`, `starmap`, `imap`, `imapUnordered` (with chunks),
 * `stats`, `shutdown()` and `await using`; each call returns the package's
 * `Task`, so `asCompleted` and `wait` work on them. Workers on any machine
 * run them (`serveRedisPool`). A task's function must be a `TaskRef` whose
 * module the workers may import (an `https:`, `jsr:` or `npm:` URL, or a
 * `file:` path that exists there), or an inline function for workers that
 * allow inline tasks. Delivery is at least once: a task whose worker died
 * runs again elsewhere (up to `maxAttempts`), so tasks should be idempotent.
 *
 * @example
 * ```ts ignore
 * import { tasks } from "@parallel/core";
 * import { RedisPool } from "@parallel/core/redis";
 * const work = tasks<typeof import("./work.ts")>(new URL("./work.ts", import.meta.url));
 * await using pool = new RedisPool({ url: "redis://127.0.0.1:6379", name: "render" });
 * console.log(await pool.map(work.fib, [30, 31, 32]));
 * ```
 */
export class RedisPool implements AsyncDisposable {
  /** The pool's name. */
  readonly name: string;
  /** The server's URL. */
  readonly url: string;
  readonly #label: string;
  readonly #stalledAfter: number;
  readonly #maxAttempts: number;
  readonly #keys: ReturnType<typeof poolKeys>;
  readonly #client = crypto.randomUUID();
  readonly #connections: Connections;
  readonly #results: RedisQueue<unknown>;
  readonly #sent = new Map<string, Sent>();
  readonly #chunks: Chunks;
  readonly #stats = { completed: 0, failed: 0, cancelled: 0 };
  #nextId = 1;
  #reading?: Promise<void>;
  #recovering?: ReturnType<typeof setInterval>;
  #closed = false;
  #drained?: PromiseWithResolvers<void>;

  /**
   * Creates the pool's front (connecting on first use).
   *
   * @param options `url`, `name`, `stalledAfter`, `maxAttempts`.
   * @throws {TypeError} When `url` or `name` is not a non-empty string, or an option is unknown.
   * @throws {RangeError} When `stalledAfter` or `maxAttempts` is out of range.
   */
  constructor(options: RedisPoolOptions) {
    const where = "Cannot create RedisPool";
    checkServerOptions(options, ["stalledAfter", "maxAttempts"], where);
    this.url = options.url;
    this.name = options.name;
    this.#label = `RedisPool "${this.name}"`;
    this.#stalledAfter = checkMilliseconds(options.stalledAfter ?? 30_000, "stalledAfter", where);
    this.#maxAttempts = wholeNumber(options.maxAttempts ?? 3, "maxAttempts", 1, where);
    this.#keys = poolKeys(this.name);
    this.#connections = new Connections(this.url, this.#label);
    this.#results = new RedisQueue({ url: this.url, name: this.#keys.results(this.#client) });
    this.#chunks = {
      label: this.#label,
      maxWorkers: 4,
      checkFn: (fn, where) => void toFnSpec(fn, `${where}: 'fn'`),
      submit: (fn, items, mode, where) => {
        const spec = toFnSpec(fn, `${where}: 'fn'`);
        const task = this.#submit(spec, [items], mode, Infinity, undefined);
        return task as Task<unknown[]>;
      },
      withdraw: (task) => {
        task.cancel();
        return true;
      },
    };
  }

  /**
   * Runs `fn(...args)` on a worker.
   *
   * @param fn A `TaskRef` from `tasks()` (its module must be importable where it runs), or an
   *   inline function (for workers that allow them).
   * @param args The arguments, copied with `node:v8`.
   * @returns The task: await it for the result.
   */
  submit<A extends unknown[], R>(fn: TaskFunction<A, R>, ...args: A): Task<Awaited<R>> {
    const spec = toFnSpec(fn, `${this.#label}.submit: 'fn'`);
    return this.#submit(spec, args, "call", Infinity, undefined) as Task<Awaited<R>>;
  }

  /**
   * Runs `fn(...args)` on a worker with per-task options.
   *
   * @param fn A task function, as for `submit`.
   * @param args The arguments.
   * @param options `timeout` (ms from the start of its run) and `signal`.
   * @returns The task.
   */
  apply<A extends unknown[], R>(
    fn: TaskFunction<A, R>,
    args: A,
    options?: RedisTaskOptions,
  ): Task<Awaited<R>> {
    const where = `${this.#label}.apply`;
    checkArray(args, "args", where);
    checkOptionNames(options ?? {}, ["timeout", "signal"], where);
    const timeout = checkMilliseconds(options?.timeout ?? Infinity, "timeout", where);
    const spec = toFnSpec(fn, `${where}: 'fn'`);
    return this.#submit(spec, args, "call", timeout, options?.signal) as Task<Awaited<R>>;
  }

  /**
   * Applies `fn` to every item on the workers, in chunks, and returns the
   * results in input order (as a local pool's `map`).
   *
   * @param fn A one-argument task function.
   * @param items The inputs.
   * @param options `chunkSize`, `timeout`, `signal`, `onProgress`.
   * @returns The results, in input order.
   */
  map<T, R>(
    fn: TaskFunction<[T], R>,
    items: Iterable<T>,
    options?: MapOptions,
  ): Promise<Awaited<R>[]> {
    return mapAll(this.#chunks, fn, items, "map", options ?? {});
  }

  /**
   * `map` with argument lists.
   *
   * @param fn A task function.
   * @param items Argument lists.
   * @param options As for `map`.
   * @returns The results, in input order.
   */
  starmap<A extends unknown[], R>(
    fn: TaskFunction<A, R>,
    items: Iterable<A>,
    options?: MapOptions,
  ): Promise<Awaited<R>[]> {
    return mapAll(this.#chunks, fn, items, "starmap", options ?? {});
  }

  /**
   * Results in input order as they arrive, pulling the input lazily.
   *
   * @param fn A one-argument task function.
   * @param items The inputs, sync or async.
   * @param options As for `map` (`chunkSize` defaults to 1).
   * @returns An async iterator of results.
   */
  imap<T, R>(
    fn: TaskFunction<[T], R>,
    items: Iterable<T> | AsyncIterable<T>,
    options?: MapOptions,
  ): AsyncIterableIterator<Awaited<R>> {
    return lazyMap(this.#chunks, fn, items, options ?? {}, true);
  }

  /**
   * Results as they arrive, in completion order.
   *
   * @param fn A one-argument task function.
   * @param items The inputs, sync or async.
   * @param options As for `imap`.
   * @returns An async iterator of results.
   */
  imapUnordered<T, R>(
    fn: TaskFunction<[T], R>,
    items: Iterable<T> | AsyncIterable<T>,
    options?: MapOptions,
  ): AsyncIterableIterator<Awaited<R>> {
    return lazyMap(this.#chunks, fn, items, options ?? {}, false);
  }

  /** What this handle's tasks have done. */
  get stats(): RedisPoolStats {
    return {
      pendingTasks: this.#sent.size,
      completedTasks: this.#stats.completed,
      failedTasks: this.#stats.failed,
      cancelledTasks: this.#stats.cancelled,
    };
  }

  /**
   * Takes no more tasks and resolves once every task of this handle has
   * settled; then releases its connections.
   *
   * @param options `cancelPending`: cancel the tasks that have not settled.
   * @returns A promise that resolves when the handle is closed.
   */
  async shutdown(options?: { cancelPending?: boolean }): Promise<void> {
    this.#closed = true;
    if (options?.cancelPending) { for (const { task } of [...this.#sent.values()]) task.cancel(); }
    if (this.#sent.size > 0) {
      this.#drained ??= Promise.withResolvers<void>();
      await this.#drained.promise;
    }
    clearInterval(this.#recovering);
    this.#recovering = undefined;
    // Disconnecting ends the reading (a get waiting in Redis ends within its slice), even while
    // the server is down; then this handle's results queue is deleted, if the server answers
    // soon: nobody reads it any more.
    await this.#results.disconnect();
    await this.#reading;
    if (this.#connections.closed) return;
    const queue = this.#keys.resultItems(this.#client).slice(0, -"items".length);
    const tidy = this.#connections.main.run((client) =>
      client.del(["items", "closed", "holds"].map((key) => queue + key))
    ).catch(() => {});
    await settledWithin(tidy, 2_000);
    await this.#connections.close();
    await tidy;
  }

  /** Shuts the pool's front down, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  #submit(
    spec: FnSpec,
    args: unknown[],
    mode: JobMode,
    timeout: number,
    signal: AbortSignal | undefined,
  ): Task<unknown> {
    if (this.#closed) {
      throw new Error(`Cannot submit a task to ${this.#label}: it has been shut down`);
    }
    const number = this.#nextId++;
    const id = `${this.#client}:${number}`;
    let item: Buffer;
    try {
      const encoded = encode(args, { transport: "process", share: refuseShared });
      item = Buffer.from(jobItem({
        id,
        client: this.#client,
        timeout: timeout === Infinity ? 0 : timeout,
        stalledAfter: this.#stalledAfter,
        body: itemToBytes({ fn: spec, mode, args: encoded.value }),
      }));
    } catch (error) {
      throw new SerializationError(
        `Cannot send task ${number} (${fnName(spec)}) to ${this.#label}: ${
          (error as Error).message
        }`,
        { cause: error },
      );
    }
    const task = new Task<unknown>(number, (why) => this.#cancel(id, why));
    let detach: (() => void) | undefined;
    if (signal !== undefined) {
      if (signal.aborted) {
        this.#stats.cancelled++;
        rejectTask(
          task,
          new CancelledError(`Task ${number} was cancelled: its signal was already aborted`, {
            cause: signal.reason,
          }),
          true,
        );
        return task;
      }
      const onAbort = () => cancelTask(task, "its signal was aborted");
      signal.addEventListener("abort", onAbort, { once: true });
      detach = () => signal.removeEventListener("abort", onAbort);
    }
    this.#sent.set(id, { task, fn: spec, detach });
    this.#start();
    this.#connections.main.run((client) =>
      evalScript(client, SUBMIT, {
        keys: [this.#keys.job(id), this.#keys.tasks, this.#keys.submitted(id)],
        arguments: [item, this.#client, String(this.#maxAttempts), String(SUBMITTED_SECONDS)],
      })
    ).catch((error) => this.#settle(id, (t) => rejectTask(t, error), "failed"));
    return task;
  }

  /** Starts reading results and looking for dead workers, once. */
  #start(): void {
    if (this.#reading !== undefined) return;
    this.#reading = this.#read();
    this.#recovering = setInterval(() => void this.#recover().catch(() => {}), RECOVER_EVERY_MS);
  }

  async #read(): Promise<void> {
    for (;;) {
      let batch: unknown[];
      try {
        batch = await getBatch(this.#results, 256, true);
      } catch (error) {
        if (this.#closed || error instanceof QueueClosedError) return;
        if (error instanceof UnreachableError) {
          // The server was not there: every task waiting here fails with the reason, and the
          // next submit (the server may be up by then) starts reading again.
          this.#reading = undefined;
          clearInterval(this.#recovering);
          this.#recovering = undefined;
          for (const id of [...this.#sent.keys()]) {
            this.#settle(id, (t) => rejectTask(t, error), "failed");
          }
          return;
        }
        if (this.#results.disconnected) return;
        // A key of the wrong type (anyone who can write to Redis can make one): look again
        // after a pause, so that a key that always fails cannot spin.
        await new Promise((resolve) => setTimeout(resolve, 10));
        continue;
      }
      for (const item of batch) {
        try {
          this.#onResult(item);
        } catch {
          // A result of the wrong form: skipped, like any other garbage.
        }
      }
    }
  }

  #onResult(item: unknown): void {
    if (typeof item === "string") {
      // A crash, written by the script that recovers a dead worker's jobs.
      const { id, crashed } = JSON.parse(item) as { id: string; crashed: string };
      if (typeof id !== "string") return;
      const sent = this.#sent.get(id);
      if (sent === undefined) return;
      this.#settle(id, (task) =>
        rejectTask(
          task,
          new WorkerCrashedError({
            taskId: task.id,
            workerName: `a worker of ${this.#label}`,
            exitCode: null,
            signal: null,
            cause: new Error(crashed),
          }),
        ), "failed");
      return;
    }
    if (typeof item !== "object" || item === null) return;
    const { id, status, value } = item as { id: string; status: number; value: unknown };
    if (typeof id !== "string" || !this.#sent.has(id)) return;
    if (status === RETURNED) this.#settle(id, (task) => resolveTask(task, value), "completed");
    else this.#settle(id, (task) => rejectTask(task, unpackError(value)), "failed");
  }

  #settle(
    id: string,
    settle: (task: Task<unknown>) => void,
    outcome: "completed" | "failed" | "cancelled",
  ): void {
    const sent = this.#sent.get(id);
    if (sent === undefined) return;
    this.#sent.delete(id);
    sent.detach?.();
    this.#stats[outcome]++;
    settle(sent.task);
    if (this.#sent.size === 0) this.#drained?.resolve();
  }

  /** Cancels a task: withdrawn if no worker has it, else its worker is told. */
  #cancel(id: string, why = "cancel() was called"): boolean {
    const sent = this.#sent.get(id);
    if (sent === undefined) return false;
    this.#settle(
      id,
      (task) =>
        rejectTask(
          task,
          new CancelledError(`Task ${task.id} (${fnName(sent.fn)}) was cancelled: ${why}`),
          true,
        ),
      "cancelled",
    );
    void this.#connections.main.run(async (client) => {
      const [withdrawn, worker] = await evalScript(client, WITHDRAW, {
        keys: [this.#keys.tasks, this.#keys.job(id), this.#keys.workers],
        arguments: [this.#keys.running("")],
      }) as [number, Uint8Array | null | undefined];
      if (withdrawn === 0 && worker) {
        await client.rPush(this.#keys.cancel(decode(worker)), id);
      }
    }).catch(() => {});
    return true;
  }

  /** Moves the jobs of workers that died back to the queue (see `_protocol.ts`). */
  async #recover(): Promise<void> {
    await recoverDeadWorkers(this.#connections, this.#keys);
  }
}

/** The package's shared objects live in one machine's memory: they cannot go to a worker. */
function refuseShared(object: object): never {
  throw new SerializationError(
    `a ${object.constructor?.name ?? "shared object"} lives in this machine's memory and cannot ` +
      `go to another machine (use a RedisQueue)`,
  );
}

/** Runs the recovery script for every registered worker whose `alive` key has expired. */
export async function recoverDeadWorkers(
  connections: Connections,
  keys: ReturnType<typeof poolKeys>,
): Promise<void> {
  const workers = await connections.main.run((client) => client.sMembers(keys.workers));
  for (const raw of workers) {
    const worker = decode(raw as Uint8Array | string);
    const resultsPrefix = keys.resultItems("").slice(0, -"}:items".length);
    // One worker's keys in a bad state (whoever can write to Redis) must not stop the others'.
    await connections.main.run((client) =>
      evalScript(client, RECOVER, {
        keys: [
          keys.alive(worker),
          keys.running(worker),
          keys.tasks,
          keys.workers,
          keys.cancel(worker),
        ],
        arguments: [worker, keys.job(""), resultsPrefix, "}:items"],
      })
    ).catch((error) => {
      if (connections.closed) throw error;
    });
  }
}
