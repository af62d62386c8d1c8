/**
 * The scheduler: the one engine behind `ThreadPool`, `ProcessPool`, `Thread`
 * and `Process`. A transport (threads/ or processes/) registers how to spawn a
 * {@linkcode WorkerHandle}; everything else — the pending queue, worker
 * counts, batching, cancellation, timeouts, crash recovery, shutdown, stats —
 * is here, once.
 *
 * How a task travels: `apply()` makes a {@linkcode TaskRecord} and queues it;
 * a microtask later {@linkcode Pool#pump} hands queued records to workers in
 * batches (one message per worker per turn). Each worker takes up to `window`
 * jobs at once: many when tasks are tiny, one when they are long (the window
 * is sized from the measured run time, so a long task never hides a queue of
 * others behind it). Outcomes come back in batches and settle the tasks.
 *
 * When a worker dies, each of its jobs is either withdrawn (it never started:
 * it goes back to the front of the queue) or failed with `WorkerCrashedError`
 * (it had started). The slot words in `internal/protocol.ts` make that
 * decision exact.
 *
 * Two state machines drive everything; each arrow is one method.
 *
 * A task (`TaskRecord.phase`):
 *
 * ```
 *            #dispatch               result (#onDone)
 *   queued ─────────────▶ sent ────────────────────────────▶ settled
 *     ▲                    │ │  result holding library objects   ▲
 *     └──── #takeBack ─────┘ └──▶ reviving ─────────────────────┘
 *      (not started: withdrawn     (#succeed / #fail)
 *       from its worker)
 *
 *   queued or not started ── #withdraw (cancel, shutdown, map failure) ──▶ settled
 *   started ── #stopRunning (cancel, timeout) ──▶ settled, and its worker retires
 *     (a thread ends when the task does, or after 500 ms; a killed process when it exits)
 *   started, worker died ── #onExit ──▶ settled (WorkerCrashedError)
 * ```
 *
 * "sent" covers both held and running: whether a sent job has started is
 * the worker's slot word (`WorkerHandle.started`, `withdraw`), read when it
 * matters, never copied here.
 *
 * A worker (`WorkerRecord.state`):
 *
 * ```
 *              first message           #retire (its running task
 *   starting ───────────────▶ live ─────────────────────────────▶ retiring
 *      │   (#onMessage)        │       was cancelled or timed out)    │
 *      │                       │ #endWorker (idle, maxTasksPerWorker, │ #endWorker (the task
 *      │                       │  shutdown, broken pool)              │  answered, or grace over)
 *      └──── #onExit ──────────┴──────────▶ gone ◀────────────────────┘
 *       (died on its own; three in a row before answering break the pool)
 * ```
 *
 * Starting and live workers take jobs; a retiring one takes none and has no
 * job it has not started (#takeBack runs as it retires). `#remove` is the
 * one way into "gone".
 *
 * @module
 */

import {
  BrokenPoolError,
  CancelledError,
  type SerializationError,
  TimeoutError,
  WorkerCrashedError,
} from "../errors.ts";
import { rejectTask, resolveTask, Task } from "../futures.ts";
import type { TaskFunction } from "../tasks.ts";
import { type DescribeContext, encode, explainUnsendable, revive, unpackError } from "./codec.ts";
import { type Chunks, lazyMap, mapAll, type MapOptions } from "./maps.ts";
import { type Trace, type TraceOutcome, TraceRecorder } from "./trace.ts";
import { fnIdOf, fnName, toFnSpec } from "./functions.ts";
import { checkArray, checkMilliseconds, checkOptionNames, show, wholeNumber } from "./options.ts";
import {
  type DoneMessage,
  FAILED,
  type FnSpec,
  type FromWorker,
  type JobExtras,
  type JobMode,
  OK,
  plainArrays,
  type RunMessage,
  type ToWorker,
  type WorkerInit,
} from "./protocol.ts";

/** How a worker ended, as far as its transport can tell. */
export interface ExitInfo {
  /** The exit code, when there was one. */
  code: number | null;
  /** The name of the signal that ended it, when one did. */
  signal: string | null;
  /** The uncaught error that ended it, when one did. */
  cause?: unknown;
}

/** A live worker, as a transport presents it to the scheduler. */
export interface WorkerHandle {
  /** Sends a message. Throws when the message cannot be cloned. */
  send(message: ToWorker, transfer?: Transferable[]): void;
  /**
   * Keeps a job that has not started from ever starting; `true` if it had
   * not started. Exact: a job withdrawn may run elsewhere.
   */
  withdraw(slot: number): boolean;
  /**
   * Cancels a job the worker holds and, as far as the pool can tell, has not
   * started, without ending the worker; `true` if it did. Unlike `withdraw`,
   * a child process may have started it in the meantime: its `started`
   * message then arrives for a settled task, and the pool stops it as a
   * running one. So it is for cancelling, never for running the job elsewhere.
   */
  drop(slot: number): boolean;
  /** Whether a job sent to the worker has started, where the transport can tell. */
  started?(slot: number): boolean;
  /**
   * Tells a running job it is cancelled (`currentTask()` sees it). Returns
   * `true` when that ends the worker (a process is killed): its `onExit`
   * follows and sorts out its other jobs. `tellOnly`: never end the worker
   * (it runs other tasks at once); returns `false`.
   */
  cancel(slot: number, tellOnly?: boolean): boolean;
  /**
   * Whether the worker keeps the program alive. The pool turns it off while
   * no task is unsettled, so that an idle pool lets the program end (as
   * Python's does), and on again when work arrives. Workers start on.
   */
  keepAlive?(on: boolean): void;
  /**
   * Ends the worker; the promise, if any, resolves once it is gone. No
   * `onExit` follows. `now`: without letting it exit gracefully (a child
   * process is killed at once).
   */
  terminate(now?: boolean): void | Promise<void>;
  /** Set by the scheduler: called for every message from the worker. */
  onMessage: (message: FromWorker) => void;
  /** Set by the scheduler: called once if the worker ends on its own. */
  onExit: (exit: ExitInfo) => void;
}

/** What a transport needs to start a worker: its init, its job capacity, its own configuration. */
export type SpawnWorker = (
  init: Omit<WorkerInit, "jobStates">,
  capacity: number,
  config: unknown,
) => WorkerHandle;

/**
 * The name a transport registers under: `"thread"` and `"process"`, and
 * any a test registers (a fake transport drives the scheduler with no worker).
 */
export type WorkerKind = string;

interface Transport {
  spawn: SpawnWorker;
  /** Option names this kind accepts beyond the common ones. */
  extraOptions: readonly string[];
  /** Checks those options and returns the configuration `spawn` receives. */
  configure?(options: Record<string, unknown>, where: string): unknown;
  /** How arguments and results are encoded for this kind of worker. */
  context: DescribeContext;
  /** The context for workers of one configuration, when it depends on it (default `context`). */
  contextFor?(config: unknown): DescribeContext;
  /** Throws when a value cannot be sent to this kind of worker (default: structured clone). */
  check?: (value: unknown) => unknown;
}

const transports = new Map<WorkerKind, Transport>();

/** Registers how to spawn workers of `kind`; called by threads/ and processes/. */
export function registerTransport(kind: WorkerKind, transport: Transport): void {
  transports.set(kind, transport);
}

/** Options of every pool. */
export interface PoolOptions {
  /** The most workers at once. Default: `navigator.hardwareConcurrency`. */
  maxWorkers?: number;
  /** Workers started at once and kept alive while idle. Default: 0. */
  minWorkers?: number;
  /** Milliseconds an idle worker above `minWorkers` lives. Default: `Infinity`. */
  idleTimeout?: number;
  /** Replace a worker after it has run this many tasks. Default: no limit. */
  maxTasksPerWorker?: number;
  /** Runs once in each new worker before its first task. */
  initializer?: TaskFunction<any[], unknown>;
  /** Arguments for `initializer`. */
  initArgs?: unknown[];
  /** The most tasks waiting for a worker; `submit` throws beyond it. Default: no limit. */
  maxQueue?: number;
  /**
   * How many tasks one worker runs at once (piscina's name). Above 1, a
   * worker starts its next task while earlier async ones await, so I/O-bound
   * tasks overlap; a cancelled or timed-out task is told (its signal aborts)
   * and its worker goes on. Default: 1.
   */
  concurrentTasksPerWorker?: number;
  /**
   * Record when each task was queued, started and settled, and on which
   * worker, for `pool.trace()`. Default: `false` (nothing is recorded).
   */
  trace?: boolean;
}

/** Options of one task (`apply`). */
export interface TaskOptions {
  /** Cancels the task when aborted. */
  signal?: AbortSignal;
  /** Milliseconds the task may run, counted from when it starts; then `TimeoutError`. */
  timeout?: number;
  /** Objects to transfer rather than copy (threads only). */
  transfer?: Transferable[];
}

/** A snapshot of what a pool is doing. */
export interface PoolStats {
  /** Live workers (not counting ones being replaced). */
  workers: number;
  /** Live workers with at least one task. */
  busyWorkers: number;
  /** Live workers with none. */
  idleWorkers: number;
  /** Tasks not started yet: waiting for a worker, or held by one that has not started them. */
  pendingTasks: number;
  /** Tasks a worker has started and that have not settled. */
  runningTasks: number;
  /** Tasks that returned. */
  completedTasks: number;
  /** Tasks that failed (their own error, a crash, a timeout). */
  failedTasks: number;
  /** Tasks cancelled. */
  cancelledTasks: number;
  /** Workers that died on their own. */
  crashedWorkers: number;
}

/** How many jobs a worker may hold at once, at most. */
const CAPACITY = 1024;
/**
 * The most jobs in one message. A worker holds several messages' worth, so it
 * is never idle while the pool reads one batch of results and sends the next.
 */
const MAX_BATCH = 256;
const NO_MODULES: string[] = [];
const NO_TRANSFER: Transferable[] = [];

function isPrimitive(value: unknown): boolean {
  return typeof value !== "object" || value === null;
}
/** The run time a worker's queued window may add up to, in milliseconds. */
const WINDOW_BUDGET_MS = 2;
/** How long a worker holding queued jobs may stay silent before an idle one takes them. */
const STEAL_AFTER_MS = 10;
/** Workers that may die while a task is the next to start, before it fails instead. */
const MAX_CRASHES_NEXT = 3;
/** How long a worker abandoned by a cancelled task may take to finish it. */
const RETIRE_GRACE_MS = 500;

interface TaskRecord {
  readonly id: number;
  task: Task<unknown>;
  readonly fn: FnSpec;
  readonly args: unknown[];
  readonly modules: string[];
  readonly transfer: Transferable[];
  readonly mode: JobMode;
  readonly timeout: number;
  /** queued → sent (to a worker) → reviving (result arrived, library objects being revived) → settled. */
  phase: "queued" | "sent" | "reviving" | "settled";
  worker?: WorkerRecord;
  slot: number;
  timer?: ReturnType<typeof setTimeout>;
  detach?: () => void;
  /** How many workers died while this task was the next of theirs to start. */
  crashesNext: number;
  /** With `trace: true`: when it was queued and started, and where. */
  traced?: { queuedAt: number; startedAt?: number; worker?: string };
}

interface WorkerRecord {
  readonly handle: WorkerHandle;
  readonly name: string;
  /** Jobs sent and not yet answered, by slot (a withdrawn job keeps its slot until answered). */
  readonly jobs: Map<number, TaskRecord | undefined>;
  readonly freeSlots: number[];
  /** Function ids this worker has been sent the spec of. */
  readonly defined: Set<number>;
  tasksTaken: number;
  /** See the module comment. */
  state: "starting" | "live" | "retiring" | "gone";
  idleTimer?: ReturnType<typeof setTimeout>;
  graceTimer?: ReturnType<typeof setTimeout>;
  /** When it last answered, or was handed work while idle (`performance.now()`). */
  lastHeard: number;
}

let nextTaskId = 1;
let nextWorkerId = 1;
const poolCounters = new Map<string, number>();

let handlesOf: (pool: Pool) => WorkerHandle[];

/** The handles of a pool's live workers (for `Process.pid`). Private to the library. */
export function workerHandles(pool: Pool): WorkerHandle[] {
  return handlesOf(pool);
}

let enqueueSpec: (
  pool: Pool,
  spec: FnSpec,
  args: unknown[],
  mode: JobMode,
  timeout: number,
) => Task<unknown>;

/**
 * Runs a job given by its spec (what a Redis worker received), as `submit`
 * or a map chunk does. Private to the library.
 */
export function submitSpec(
  pool: Pool,
  spec: FnSpec,
  args: unknown[],
  mode: JobMode,
  timeout: number,
): Task<unknown> {
  return enqueueSpec(pool, spec, args, mode, timeout);
}

/**
 * The API that `ThreadPool` and `ProcessPool` share (Python's `Executor`).
 * Create one of those; this class holds the scheduler they both run on.
 */
export class Pool {
  static {
    handlesOf = (pool) => [...pool.#workers].map((worker) => worker.handle);
    enqueueSpec = (pool, spec, args, mode, timeout) =>
      pool.#enqueue(spec, args, mode, timeout, undefined, undefined, false).task;
  }

  readonly #kind: "thread" | "process";
  readonly #label: string;
  readonly #workerName?: string;
  readonly #spawn: SpawnWorker;
  readonly #transportConfig: unknown;
  readonly #context: DescribeContext;
  readonly #check?: (value: unknown) => unknown;
  /** Workers being ended; a shutdown waits for them. */
  readonly #ending = new Set<Promise<void>>();
  readonly #maxWorkers: number;
  readonly #minWorkers: number;
  readonly #idleTimeout: number;
  readonly #maxTasksPerWorker: number;
  readonly #maxQueue: number;
  /** Tasks one worker runs at once (`concurrentTasksPerWorker`). */
  readonly #concurrency: number;
  readonly #tracer?: TraceRecorder;
  readonly #initializer?: FnSpec;
  readonly #initArgs: unknown[];
  readonly #initModules: string[];

  readonly #pending: TaskRecord[] = [];
  readonly #workers = new Set<WorkerRecord>();
  /** Workers out of service that still hold jobs (see `#retire`); not in `#workers`. */
  readonly #retiring = new Set<WorkerRecord>();
  #stealTimer?: ReturnType<typeof setTimeout>;
  /** Workers in a row that died before answering; at 3 the pool is broken. */
  #failedStarts = 0;
  #pumpScheduled = false;
  /** Tasks in the "sent" phase: handed to a worker and not settled. */
  #sent = 0;
  /** Tasks made and not settled; while there are none, no worker keeps the program alive. */
  #unsettled = 0;
  #avgRunMs = Infinity;
  #closed = false;
  /** Set by `terminate()`: workers are ended at once, not gracefully. */
  #terminating = false;
  #broken?: BrokenPoolError;
  #drained?: { promise: Promise<void>; resolve: () => void };
  readonly #stats = { completed: 0, failed: 0, cancelled: 0, crashed: 0 };
  /** What `internal/maps.ts` builds `map` and the `imap`s on. */
  readonly #chunks: Chunks;

  /**
   * Creates a pool of `kind` workers. Use `ThreadPool` or `ProcessPool`.
   *
   * @param kind Which transport to use.
   * @param options The pool's options.
   * @param label The class name, for messages and worker names.
   * @param workerName The name of the pool's one worker (for `Thread` and `Process`).
   * @throws {RangeError} When a numeric option is out of range.
   * @throws {TypeError} When an option is unknown or of the wrong type.
   */
  constructor(kind: WorkerKind, options: PoolOptions, label: string, workerName?: string) {
    const transport = transports.get(kind);
    if (transport === undefined) throw new Error(`No ${kind} transport is loaded`);
    this.#kind = transport.context.transport;
    this.#spawn = transport.spawn;
    const where = `Cannot create ${label}`;
    checkOptionNames(options, [...COMMON_OPTIONS, ...transport.extraOptions], where);
    this.#transportConfig = transport.configure?.(options as Record<string, unknown>, where);
    this.#context = transport.contextFor?.(this.#transportConfig) ?? transport.context;
    this.#check = transport.check;
    this.#maxWorkers = wholeNumber(
      options.maxWorkers ?? navigator.hardwareConcurrency ?? 1,
      "maxWorkers",
      1,
      where,
    );
    this.#minWorkers = wholeNumber(options.minWorkers ?? 0, "minWorkers", 0, where);
    if (this.#minWorkers > this.#maxWorkers) {
      throw new RangeError(
        `${where}: 'minWorkers' must not exceed 'maxWorkers' (${this.#maxWorkers}): current value is ${this.#minWorkers}`,
      );
    }
    this.#idleTimeout = checkMilliseconds(options.idleTimeout ?? Infinity, "idleTimeout", where);
    this.#maxTasksPerWorker = options.maxTasksPerWorker === undefined
      ? Infinity
      : wholeNumber(options.maxTasksPerWorker, "maxTasksPerWorker", 1, where);
    this.#maxQueue = options.maxQueue === undefined || options.maxQueue === Infinity
      ? Infinity
      : wholeNumber(options.maxQueue, "maxQueue", 0, where);
    this.#concurrency = wholeNumber(
      options.concurrentTasksPerWorker ?? 1,
      "concurrentTasksPerWorker",
      1,
      where,
    );
    if (options.trace !== undefined && typeof options.trace !== "boolean") {
      throw new TypeError(
        `${where}: 'trace' must be a boolean: current value is ${show(options.trace)}`,
      );
    }
    if (options.initArgs !== undefined) checkArray(options.initArgs, "initArgs", where);
    if (options.initializer !== undefined) {
      this.#initializer = toFnSpec(options.initializer, `${where}: 'initializer'`);
    }
    const initArgs = encode(options.initArgs ?? [], this.#context);
    this.#initArgs = initArgs.value;
    this.#initModules = initArgs.modules;
    const number = (poolCounters.get(label) ?? 0) + 1;
    poolCounters.set(label, number);
    this.#label = `${label}-${number}`;
    if (options.trace) this.#tracer = new TraceRecorder(this.#label);
    this.#workerName = workerName;
    const records = new WeakMap<Task<unknown>, TaskRecord>();
    this.#chunks = {
      label: this.#label,
      maxWorkers: this.#maxWorkers,
      checkFn: (fn, where) => void toFnSpec(fn, `${where}: 'fn'`),
      submit: (fn, items, mode, where) => {
        const spec = toFnSpec(fn, `${where}: 'fn'`);
        const record = this.#enqueue(spec, [items], mode, Infinity, undefined, undefined, false);
        records.set(record.task, record);
        return record.task as Task<unknown[]>;
      },
      withdraw: (task, why) => this.#withdraw(records.get(task)!, why),
    };
    for (let i = 0; i < this.#minWorkers; i++) {
      if (this.#startWorker() === undefined) break; // the pool is broken: start nothing more
    }
  }

  /**
   * Runs `fn(...args)` in a worker, like `concurrent.futures`' `submit`.
   *
   * @param fn A `TaskRef` from `tasks()`, or a self-contained function.
   * @param args The arguments, cloned (or described, for library objects).
   * @returns The task: await it for the result.
   * @throws {BrokenPoolError} When the pool's initializer failed.
   * @throws {RangeError} When `maxQueue` tasks are already waiting.
   */
  submit<A extends unknown[], R>(fn: TaskFunction<A, R>, ...args: A): Task<Awaited<R>> {
    const spec = toFnSpec(fn, `${this.#label}.submit: 'fn'`);
    return this.#enqueue(spec, args, "call", Infinity).task as Task<Awaited<R>>;
  }

  /**
   * Runs `fn(...args)` in a worker with per-task options, like Python's
   * `Pool.apply_async`.
   *
   * @param fn A `TaskRef` from `tasks()`, or a self-contained function.
   * @param args The arguments.
   * @param options `signal`, `timeout` (ms from the start of the run) and `transfer`.
   * @returns The task: await it for the result.
   * @throws {BrokenPoolError} When the pool's initializer failed.
   * @throws {RangeError} When `maxQueue` tasks are waiting, or `timeout` is invalid.
   * @throws {TypeError} When `fn` is not a task function or `args` not an array.
   */
  apply<A extends unknown[], R>(
    fn: TaskFunction<A, R>,
    args: A,
    options?: TaskOptions,
  ): Task<Awaited<R>> {
    options ??= {};
    checkArray(args, "args", `${this.#label}.apply`);
    checkOptionNames(options, TASK_OPTIONS, `${this.#label}.apply`);
    const timeout = checkMilliseconds(
      options.timeout ?? Infinity,
      "timeout",
      `${this.#label}.apply`,
    );
    return this.#enqueue(
      toFnSpec(fn, `${this.#label}.apply: 'fn'`),
      args,
      "call",
      timeout,
      options.signal,
      options.transfer,
    ).task as Task<Awaited<R>>;
  }

  /**
   * Applies `fn` to every item, in parallel, and returns the results in
   * order, like Python's `Pool.map`. Items go in chunks (one message per
   * chunk); the default size splits the input into about four chunks per
   * worker.
   *
   * With `timeout` (ms from the call) or `signal`, the call rejects with
   * `TimeoutError` or the signal's reason when it ends first, and its
   * unfinished chunks are cancelled (running ones too). `onProgress(done,
   * total)` is called as chunks finish.
   *
   * @example Progress and a deadline
   * ```ts
   * import assert from "node:assert/strict";
   * import { ThreadPool } from "@parallel/core";
   * await using pool = new ThreadPool({ maxWorkers: 2 });
   * const seen: number[] = [];
   * const squares = await pool.map((x: number) => x * x, [1, 2, 3, 4], {
   *   chunkSize: 1,
   *   timeout: 10_000,
   *   onProgress: (done, total) => seen.push(done / total!),
   * });
   * assert.deepEqual(squares, [1, 4, 9, 16]);
   * assert.deepEqual(seen, [0.25, 0.5, 0.75, 1]);
   * ```
   *
   * @param fn A one-argument task function.
   * @param items The inputs.
   * @param options `chunkSize` (items per chunk), `timeout`, `signal`, `onProgress`.
   * @returns The results, in input order. Rejects with the first failing chunk's error.
   * @throws {RangeError} When `chunkSize` is not a whole number >= 1.
   */
  map<T, R>(
    fn: TaskFunction<[T], R>,
    items: Iterable<T>,
    options?: MapOptions,
  ): Promise<Awaited<R>[]> {
    return mapAll(this.#chunks, fn, items, "map", options ?? {});
  }

  /**
   * Like {@linkcode Pool.map}, but each item is an argument list, like
   * Python's `Pool.starmap`.
   *
   * @param fn A task function.
   * @param items Argument lists.
   * @param options `chunkSize` (items per chunk), `timeout`, `signal`, `onProgress`, as for `map`.
   * @returns The results, in input order.
   * @throws {RangeError} When `chunkSize` is not a whole number >= 1.
   */
  starmap<A extends unknown[], R>(
    fn: TaskFunction<A, R>,
    items: Iterable<A>,
    options?: MapOptions,
  ): Promise<Awaited<R>[]> {
    return mapAll(this.#chunks, fn, items, "starmap", options ?? {});
  }

  /**
   * Applies `fn` to items pulled lazily from `items`, yielding results in
   * input order, like Python's `Pool.imap`. It keeps about two chunks per
   * worker in flight; breaking out of the loop stops pulling and cancels the
   * chunks that have not started.
   *
   * @param fn A one-argument task function.
   * @param items The inputs, sync or async.
   * @param options `chunkSize` (items per job, default 1), and `timeout` (ms
   *   from the call), `signal` and `onProgress` as for `map`.
   * @returns An async iterator of results.
   * @throws {RangeError} When `chunkSize` is not a whole number >= 1.
   */
  imap<T, R>(
    fn: TaskFunction<[T], R>,
    items: Iterable<T> | AsyncIterable<T>,
    options?: MapOptions,
  ): AsyncIterableIterator<Awaited<R>> {
    return lazyMap(this.#chunks, fn, items, options ?? {}, true);
  }

  /**
   * Like {@linkcode Pool.imap}, but yields each result as soon as it is
   * ready, like Python's `Pool.imap_unordered`.
   *
   * @param fn A one-argument task function.
   * @param items The inputs, sync or async.
   * @param options `chunkSize` (items per job, default 1), and `timeout` (ms
   *   from the call), `signal` and `onProgress` as for `map`.
   * @returns An async iterator of results, in completion order.
   * @throws {RangeError} When `chunkSize` is not a whole number >= 1.
   */
  imapUnordered<T, R>(
    fn: TaskFunction<[T], R>,
    items: Iterable<T> | AsyncIterable<T>,
    options?: MapOptions,
  ): AsyncIterableIterator<Awaited<R>> {
    return lazyMap(this.#chunks, fn, items, options ?? {}, false);
  }

  /**
   * Stops taking tasks and ends every worker once the tasks already taken
   * have settled. With `cancelPending`, tasks that have not started are
   * cancelled instead. Calling it again returns the same wait.
   *
   * A thread abandoned in a synchronous loop (its task was cancelled or
   * timed out, and it never polls `currentTask().cancelled`) cannot be
   * stopped by Deno: the pool lets it go after 500 ms, and the promise does
   * not wait for its loop, which runs on (and keeps the program alive) until
   * it returns.
   *
   * @param options `cancelPending`: cancel tasks that have not started.
   * @returns A promise that resolves when every worker has ended or, for a
   *   thread stuck as above, been let go.
   */
  shutdown(options?: { cancelPending?: boolean }): Promise<void> {
    this.#closed = true;
    if (options?.cancelPending) {
      // A retiring child process may still hold jobs it has not started.
      const handed = [...this.#workers, ...this.#retiring].flatMap((worker) => [
        ...worker.jobs.values(),
      ]);
      for (const record of [...this.#pending, ...handed]) {
        if (record) this.#withdraw(record, "the pool was shut down");
      }
    }
    this.#drained ??= Promise.withResolvers<void>();
    this.#endIfDrained();
    return this.#drained.promise;
  }

  /**
   * Stops now, as Python's `Pool.terminate()` and piscina's `destroy()` do:
   * tasks not started are cancelled, running ones fail with `CancelledError`,
   * child processes are killed (SIGKILL) and threads are ended (a thread
   * stuck in a synchronous loop is abandoned, see `shutdown()`). The pool
   * takes no more tasks.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CancelledError, ThreadPool } from "@parallel/core";
   * const pool = new ThreadPool({ maxWorkers: 1 });
   * const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
   * const running = pool.submit(sleep, 10_000);
   * const waiting = pool.submit(sleep, 10_000);
   * await pool.terminate();
   * await assert.rejects(running.then(), CancelledError);
   * await assert.rejects(waiting.then(), CancelledError);
   * ```
   *
   * @returns A promise that resolves once every worker has been ended.
   */
  terminate(): Promise<void> {
    this.#closed = true;
    this.#terminating = true;
    const why = "terminate() was called";
    for (const record of this.#pending.splice(0)) this.#settleCancelled(record, why);
    for (const worker of [...this.#workers, ...this.#retiring]) {
      for (const record of worker.jobs.values()) if (record) this.#settleCancelled(record, why);
    }
    for (const worker of [...this.#retiring]) this.#endWorker(worker);
    this.#drained ??= Promise.withResolvers<void>();
    this.#endIfDrained();
    return this.#drained.promise;
  }

  /** Shuts the pool down (waiting for taken tasks), for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  /**
   * The timeline of the tasks that have settled, in Chrome's trace event
   * format: write it to a file and open it in Perfetto (ui.perfetto.dev) or
   * `chrome://tracing`, one lane per worker and one for the queue. Times are
   * when the pool heard of each start and end.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ThreadPool } from "@parallel/core";
   * await using pool = new ThreadPool({ maxWorkers: 2, trace: true });
   * await pool.map((x: number) => x * 2, [1, 2, 3, 4], { chunkSize: 1 });
   * const { traceEvents } = pool.trace();
   * assert.equal(traceEvents.filter((e) => e.ph === "X" && e.tid > 0).length, 4);
   * // Deno.writeTextFileSync("pool.trace.json", JSON.stringify(pool.trace()));
   * ```
   *
   * @returns The trace, as Chrome's JSON object format.
   * @throws {Error} When the pool was not created with `trace: true`.
   */
  trace(): Trace {
    if (this.#tracer === undefined) {
      throw new Error(`${this.#label}.trace(): create the pool with { trace: true } to record one`);
    }
    return this.#tracer.trace();
  }

  /** Whether the worker a sent record went to has started it. */
  #started(record: TaskRecord): boolean {
    return record.worker?.handle.started?.(record.slot) ?? true;
  }

  /** What the pool is doing now. */
  get stats(): PoolStats {
    let busy = 0;
    let running = 0;
    let held = 0;
    for (const worker of [...this.#workers, ...this.#retiring]) {
      let holds = 0;
      for (const record of worker.jobs.values()) {
        if (record === undefined || record.phase !== "sent") continue;
        holds++;
        if (this.#started(record)) running++;
        else held++;
      }
      if (holds > 0 && inService(worker)) busy++;
    }
    return {
      workers: this.#workers.size,
      busyWorkers: busy,
      idleWorkers: this.#workers.size - busy,
      pendingTasks: this.#pending.length + held,
      runningTasks: running,
      completedTasks: this.#stats.completed,
      failedTasks: this.#stats.failed,
      cancelledTasks: this.#stats.cancelled,
      crashedWorkers: this.#stats.crashed,
    };
  }

  // ---- queueing ----------------------------------------------------------

  #enqueue(
    fn: FnSpec,
    args: unknown[],
    mode: JobMode,
    timeout: number,
    signal?: AbortSignal,
    transfer?: Transferable[],
    /** `map` and `imap` bound their own chunks in flight: `maxQueue` is for `submit`. */
    bounded = true,
  ): TaskRecord {
    if (this.#broken) throw this.#broken;
    if (this.#closed) {
      throw new Error(`Cannot submit a task to ${this.#label}: it has been shut down`);
    }
    if (bounded && this.#pending.length >= this.#maxQueue) {
      throw new RangeError(
        `Cannot submit a task to ${this.#label}: 'maxQueue' (${this.#maxQueue}) tasks are already waiting`,
      );
    }
    const id = nextTaskId++;
    let modules = NO_MODULES;
    if (!args.every(isPrimitive)) {
      try {
        const encoded = encode(args, this.#context);
        args = encoded.value;
        modules = encoded.modules;
      } catch (error) {
        throw this.#explainEncoding(id, fn, mode, args, error);
      }
    }
    const record: TaskRecord = {
      id,
      task: undefined as unknown as Task<unknown>,
      fn,
      args,
      modules,
      transfer: transfer ?? NO_TRANSFER,
      mode,
      timeout,
      phase: "queued",
      slot: -1,
      crashesNext: 0,
    };
    if (this.#tracer) record.traced = { queuedAt: performance.now() };
    const task = new Task<unknown>(
      id,
      (why) => this.#cancelRecord(record, undefined, why),
      () => record.phase === "reviving" || (record.phase === "sent" && this.#started(record)),
    );
    record.task = task;
    if (this.#unsettled++ === 0) this.#keepAlive(true);
    if (signal !== undefined) {
      if (signal.aborted) {
        this.#settleCancelled(record, "its signal was already aborted", signal.reason);
        return record;
      }
      const onAbort = () => this.#cancelRecord(record, signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      record.detach = () => signal.removeEventListener("abort", onAbort);
    }
    this.#pending.push(record);
    this.#schedulePump();
    return record;
  }

  /** Names the argument that `encode` could not send, and why; rethrows anything else. */
  #explainEncoding(
    id: number,
    fn: FnSpec,
    mode: JobMode,
    args: unknown[],
    error: unknown,
  ): SerializationError {
    if (!(error instanceof Error) || error.name !== "SerializationError") throw error;
    const label = `task ${id} (${fnName(fn)})`;
    return explainUnsendable(
      mode === "call" ? args : [args[0]],
      (i) => mode === "call" ? `argument ${i} of ${label}` : `the items of ${label}`,
      (value) => encode(value, this.#context),
    ) ?? error as SerializationError;
  }

  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    queueMicrotask(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  /** The number of jobs a worker may hold, from the measured run time per job. */
  #window(): number {
    if (this.#avgRunMs === Infinity) return this.#concurrency;
    return Math.max(
      this.#concurrency,
      Math.min(CAPACITY, Math.floor(WINDOW_BUDGET_MS / Math.max(this.#avgRunMs, 1e-4))),
    );
  }

  /**
   * Hands queued tasks to workers, starting workers as needed. Each batch goes
   * to the least loaded worker and is at most an even share of the queue, so
   * a few slow tasks spread over the workers instead of piling onto one.
   */
  #pump(): void {
    const window = this.#window();
    while (this.#pending.length > 0 && !this.#broken) {
      let best: WorkerRecord | undefined;
      let bestRoom = 0;
      for (const worker of this.#workers) {
        if (!inService(worker)) continue;
        const room = Math.min(
          window - worker.jobs.size,
          worker.freeSlots.length,
          this.#maxTasksPerWorker - worker.tasksTaken,
        );
        if (room > bestRoom && (best === undefined || worker.jobs.size < best.jobs.size)) {
          best = worker;
          bestRoom = room;
        }
      }
      const canGrow = this.#workers.size < this.#maxWorkers;
      if (best === undefined || (best.jobs.size > 0 && canGrow)) {
        if (!canGrow || this.#startWorker() === undefined) break;
        continue;
      }
      const share = Math.ceil(this.#pending.length / this.#maxWorkers);
      this.#dispatch(best, this.#pending.splice(0, Math.min(bestRoom, share, MAX_BATCH)));
    }
    this.#endIfDrained();
  }

  #dispatch(worker: WorkerRecord, records: TaskRecord[]): void {
    clearTimeout(worker.idleTimer);
    if (worker.jobs.size === 0) worker.lastHeard = performance.now();
    for (const record of records) {
      record.slot = worker.freeSlots.pop()!;
      record.worker = worker;
      this.#enter(record, "sent");
      worker.jobs.set(record.slot, record);
      worker.tasksTaken++;
    }
    try {
      sendRun(worker, records);
    } catch {
      this.#sendOneByOne(worker, records);
    }
  }

  /** After a batch failed to send: fail the tasks that cannot be sent, send the rest. */
  #sendOneByOne(worker: WorkerRecord, records: TaskRecord[]): void {
    for (const record of records) {
      const label = `task ${record.id} (${fnName(record.fn)})`;
      let problem = explainUnsendable(
        record.mode === "call" ? record.args : [record.args[0]],
        (i) => record.mode === "call" ? `argument ${i} of ${label}` : `the items of ${label}`,
        this.#check,
      );
      if (problem === undefined) {
        try {
          sendRun(worker, [record]);
          continue;
        } catch (error) {
          problem = error as SerializationError;
        }
      }
      this.#release(worker, record);
      this.#fail(record, problem);
    }
  }

  /** Frees a slot whose job never reached the worker. */
  #release(worker: WorkerRecord, record: TaskRecord): void {
    worker.jobs.delete(record.slot);
    worker.freeSlots.push(record.slot);
    worker.tasksTaken--;
  }

  // ---- workers -----------------------------------------------------------

  /** Starts a worker; if that fails, the pool is broken and this returns `undefined`. */
  #startWorker(): WorkerRecord | undefined {
    const id = nextWorkerId++;
    const name = this.#workerName ??
      `${this.#label}-worker-${this.#workers.size + this.#retiring.size + 1}`;
    let handle: WorkerHandle;
    try {
      handle = this.#spawn(
        {
          name,
          id,
          kind: this.#kind,
          initializer: this.#initializer,
          initArgs: this.#initArgs,
          initModules: this.#initModules,
          // Left out at 1: a child process's init then goes as the JSON it always was.
          ...(this.#concurrency > 1 ? { concurrency: this.#concurrency } : {}),
        },
        CAPACITY,
        this.#transportConfig,
      );
    } catch (error) {
      this.#breakPool(`a worker could not be started`, error);
      return undefined;
    }
    const worker: WorkerRecord = {
      handle,
      name,
      jobs: new Map(),
      freeSlots: Array.from({ length: CAPACITY }, (_, i) => CAPACITY - 1 - i),
      defined: new Set(),
      tasksTaken: 0,
      state: "starting",
      lastHeard: performance.now(),
    };
    handle.onMessage = (message) => this.#onMessage(worker, message);
    handle.onExit = (exit) => this.#onExit(worker, exit);
    this.#workers.add(worker);
    if (this.#unsettled === 0) handle.keepAlive?.(false);
    return worker;
  }

  /** Lets every worker keep the program alive, or not: on while any task is unsettled. */
  #keepAlive(on: boolean): void {
    for (const worker of this.#workers) worker.handle.keepAlive?.(on);
    for (const worker of this.#retiring) worker.handle.keepAlive?.(on);
  }

  #onMessage(worker: WorkerRecord, message: FromWorker): void {
    if (worker.state === "starting") worker.state = "live";
    worker.lastHeard = performance.now();
    this.#failedStarts = 0;
    switch (message.type) {
      case "started": {
        const record = worker.jobs.get(message.slot);
        // Cancelled while held, it started before the worker heard (a child process reads the
        // cancel only between jobs): stopped as a cancelled running task is.
        if (record?.phase === "settled") {
          if (this.#concurrency > 1) worker.handle.cancel(message.slot, true);
          else this.#retire(worker, worker.handle.cancel(message.slot));
          return;
        }
        if (record?.phase !== "sent") return;
        if (record.traced) {
          record.traced.startedAt = performance.now();
          record.traced.worker = worker.name;
        }
        if (record.timeout !== Infinity) {
          record.timer = setTimeout(() => this.#timeOut(record), record.timeout);
        }
        return;
      }
      case "done": {
        this.#onDone(worker, message);
        return;
      }
      case "init-failed": {
        this.#breakPool(
          `its initializer failed in worker "${worker.name}"`,
          unpackError(message.error),
        );
        return;
      }
      case "ready":
      case "exit": // Transports turn "exit" into onExit.
        return;
    }
  }

  #onDone(worker: WorkerRecord, message: DoneMessage): void {
    const { slots, statuses, values, modules } = message;
    if (slots.length > 0) {
      const sample = message.busyMs / slots.length;
      this.#avgRunMs = this.#avgRunMs === Infinity ? sample : this.#avgRunMs * 0.7 + sample * 0.3;
    }
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i];
      if (!worker.jobs.has(slot)) continue;
      const record = worker.jobs.get(slot);
      worker.jobs.delete(slot);
      worker.freeSlots.push(slot);
      // A withdrawn job (SKIPPED) was settled or requeued when it was withdrawn.
      if (record === undefined || record.phase !== "sent") continue;
      if (statuses[i] === OK) {
        const revivable = modules[i];
        if (revivable === undefined) {
          this.#succeed(record, values[i]);
        } else {
          this.#enter(record, "reviving");
          revive(values[i], revivable, this.#context).then(
            (value) => this.#succeed(record, value),
            (error) => this.#fail(record, error),
          );
        }
      } else if (statuses[i] === FAILED) {
        this.#fail(record, unpackError(values[i]));
      }
    }
    this.#afterWork(worker);
  }

  /** Keeps worker counts right after a worker's jobs were answered. */
  #afterWork(worker: WorkerRecord): void {
    if (inService(worker) && worker.jobs.size === 0 && this.#pending.length === 0) {
      this.#steal();
    }
    if (worker.state === "retiring") {
      // It ends once the abandoned task has answered (or its grace period ends).
      if (worker.jobs.size === 0) this.#endWorker(worker);
    } else if (worker.tasksTaken >= this.#maxTasksPerWorker && worker.jobs.size === 0) {
      this.#endWorker(worker);
    } else if (
      worker.jobs.size === 0 && this.#pending.length === 0 && this.#idleTimeout !== Infinity &&
      this.#workers.size > this.#minWorkers
    ) {
      clearTimeout(worker.idleTimer);
      worker.idleTimer = setTimeout(() => {
        if (worker.jobs.size === 0 && this.#workers.size > this.#minWorkers) {
          this.#endWorker(worker);
        }
      }, this.#idleTimeout);
      Deno.unrefTimer(worker.idleTimer);
    }
    this.#schedulePump();
  }

  /**
   * A worker ran dry while another still holds jobs that have not started:
   * if that one has not answered for {@linkcode STEAL_AFTER_MS}, it is busy
   * with a long task that hides the others, so they are withdrawn and queued
   * again for the idle worker. (A worker that answers often is only busy, and
   * taking its jobs would make the two trade them back and forth.) Only
   * transports that can withdraw a job from a live worker (threads) take part.
   */
  #steal(): void {
    const now = performance.now();
    let later = false;
    for (const worker of this.#workers) {
      if (!inService(worker) || worker.jobs.size < 2) continue;
      if (now - worker.lastHeard < STEAL_AFTER_MS) {
        later = true;
        continue;
      }
      this.#takeBack(worker);
    }
    if (later && this.#stealTimer === undefined) {
      this.#stealTimer = setTimeout(() => {
        this.#stealTimer = undefined;
        const idle = [...this.#workers].some((w) => inService(w) && w.jobs.size === 0);
        if (idle && this.#pending.length === 0) this.#steal();
        this.#schedulePump();
      }, STEAL_AFTER_MS);
    }
  }

  /**
   * sent → queued, for every job `worker` holds and has not started: each is
   * withdrawn (it can never start there) and goes back to the front of the
   * queue. It no longer counts toward the worker's `maxTasksPerWorker`; its
   * slot stays taken until the worker reports it skipped.
   */
  #takeBack(worker: WorkerRecord): TaskRecord[] {
    const taken: TaskRecord[] = [];
    for (const [slot, record] of worker.jobs) {
      if (record === undefined || record.phase !== "sent") continue;
      if (!worker.handle.withdraw(slot)) continue;
      worker.jobs.set(slot, undefined);
      worker.tasksTaken--;
      this.#enter(record, "queued");
      record.worker = undefined;
      taken.push(record);
    }
    this.#pending.unshift(...taken);
    return taken;
  }

  /** Any state → gone: the pool forgets `worker`. Its transport ends it, or it has ended. */
  #remove(worker: WorkerRecord): void {
    this.#retiring.delete(worker);
    worker.state = "gone";
    clearTimeout(worker.idleTimer);
    clearTimeout(worker.graceTimer);
    this.#workers.delete(worker);
  }

  /** → gone: ends a worker the pool no longer wants (idle, used up, retired, shut down, broken). */
  #endWorker(worker: WorkerRecord): void {
    if (worker.state === "gone") return;
    this.#remove(worker);
    this.#terminate(worker);
    this.#keepMinimum();
    this.#schedulePump();
  }

  #terminate(worker: WorkerRecord): void {
    const ended = worker.handle.terminate(this.#terminating);
    if (ended) {
      this.#ending.add(ended);
      ended.finally(() => this.#ending.delete(ended));
    }
  }

  /**
   * → gone: the worker ended on its own (a crash), or a retiring one was
   * stopped. The jobs it had not started run elsewhere; the ones it had fail
   * with `WorkerCrashedError`.
   */
  #onExit(worker: WorkerRecord, exit: ExitInfo): void {
    if (worker.state === "gone") return;
    const starting = worker.state === "starting";
    const retiring = worker.state === "retiring";
    // A retiring worker was stopped by the pool (a cancelled process is killed): not a crash.
    if (!retiring) this.#stats.crashed++;
    this.#remove(worker);
    const next = this.#takeBack(worker)[0];
    const ranSomething = [...worker.jobs.values()].some((record) => record?.phase === "sent");
    // When a worker that had answered dies with no job it started, the job next in line may
    // be what killed it (a child can write anything): after MAX_CRASHES_NEXT such
    // deaths it runs no more.
    if (
      !starting && !retiring && !ranSomething && next !== undefined &&
      ++next.crashesNext >= MAX_CRASHES_NEXT
    ) {
      this.#pending.splice(this.#pending.indexOf(next), 1);
      this.#fail(
        next,
        crashed(next, worker, {
          ...exit,
          cause: new Error(
            `${MAX_CRASHES_NEXT} workers died while this task was the next to start; ` +
              `it is not run again`,
            { cause: exit.cause },
          ),
        }),
      );
    }
    for (const record of worker.jobs.values()) {
      if (record === undefined || record.phase !== "sent") continue;
      this.#fail(
        record,
        crashed(record, worker, exit),
      );
    }
    worker.jobs.clear();
    // A worker that died before answering and before starting any job could not start.
    if (starting && !ranSomething && ++this.#failedStarts >= 3) {
      this.#breakPool(`${this.#failedStarts} workers in a row died before answering`, exit.cause);
      return;
    }
    this.#keepMinimum();
    this.#schedulePump();
  }

  /** Starts workers up to `minWorkers` (a `Thread`'s or `Process`'s one worker is not replaced). */
  #keepMinimum(): void {
    // A broken pool starts nothing: its replacements would fail the same way.
    if (this.#closed || this.#broken || this.#workerName !== undefined) return;
    while (this.#workers.size < this.#minWorkers) {
      if (this.#startWorker() === undefined) return;
    }
  }

  /**
   * Takes a worker out of service because its running task was cancelled or
   * timed out: its other jobs go back to the queue, a replacement can start
   * at once, and it ends when the abandoned task does (or after a grace
   * period; a thread stuck in a synchronous loop runs on until it polls
   * `currentTask().cancelled`).
   */
  #retire(worker: WorkerRecord, ending: boolean): void {
    if (!inService(worker)) return;
    worker.state = "retiring";
    this.#workers.delete(worker);
    this.#retiring.add(worker);
    this.#takeBack(worker);
    // A worker being ended (a killed process) reports what it had started when it exits:
    // failing its jobs after a grace period could fail some that never ran.
    if (ending) {
      this.#afterWork(worker);
      this.#schedulePump();
      return;
    }
    worker.graceTimer = setTimeout(() => {
      for (const record of worker.jobs.values()) {
        if (record && record.phase === "sent") {
          this.#fail(
            record,
            crashed(record, worker, {
              code: null,
              signal: null,
              cause: new Error(
                `the worker was stopped because a cancelled task on it did not end within ${RETIRE_GRACE_MS} ms`,
              ),
            }),
          );
        }
      }
      this.#endWorker(worker);
    }, RETIRE_GRACE_MS);
    this.#afterWork(worker);
    this.#schedulePump();
  }

  #breakPool(why: string, cause: unknown): void {
    this.#broken = new BrokenPoolError(`${this.#label} is broken: ${why}`, { cause });
    for (const record of this.#pending.splice(0)) this.#fail(record, this.#broken);
    for (const w of [...this.#workers, ...this.#retiring]) {
      for (const record of w.jobs.values()) if (record) this.#fail(record, this.#broken);
      w.jobs.clear();
      this.#endWorker(w);
    }
  }

  // ---- settling ----------------------------------------------------------

  /** Moves `record` to `phase`: every change of phase goes through here. */
  #enter(record: TaskRecord, phase: TaskRecord["phase"]): void {
    if (record.phase === "sent") this.#sent--;
    if (phase === "sent") this.#sent++;
    record.phase = phase;
  }

  #finish(record: TaskRecord, outcome: TraceOutcome): boolean {
    if (record.phase === "settled") return false;
    if (record.traced) {
      this.#tracer!.settled(
        { id: record.id, fn: fnName(record.fn), ...record.traced },
        outcome,
        performance.now(),
      );
    }
    this.#enter(record, "settled");
    if (--this.#unsettled === 0) this.#keepAlive(false);
    clearTimeout(record.timer);
    record.detach?.();
    return true;
  }

  #succeed(record: TaskRecord, value: unknown): void {
    if (!this.#finish(record, "returned")) return;
    this.#stats.completed++;
    resolveTask(record.task, value);
    this.#endIfDrained();
  }

  #fail(record: TaskRecord, error: unknown): void {
    if (!this.#finish(record, "failed")) return;
    this.#stats.failed++;
    rejectTask(record.task, error);
    this.#endIfDrained();
  }

  #settleCancelled(record: TaskRecord, why: string, reason?: unknown): void {
    if (!this.#finish(record, "cancelled")) return;
    this.#stats.cancelled++;
    rejectTask(
      record.task,
      new CancelledError(`Task ${record.id} (${fnName(record.fn)}) was cancelled: ${why}`, {
        cause: reason,
      }),
      true,
    );
    this.#endIfDrained();
  }

  /** `Task.cancel()` or an aborted signal. */
  #cancelRecord(record: TaskRecord, reason?: unknown, why?: string): boolean {
    why ??= reason === undefined ? "cancel() was called" : "its signal was aborted";
    if (record.phase === "settled") return false;
    if (this.#withdraw(record, why, reason)) return true;
    if (record.phase === "reviving") {
      this.#settleCancelled(record, why, reason);
    } else {
      this.#stopRunning(record, () => this.#settleCancelled(record, why, reason));
    }
    return true;
  }

  /**
   * Cancels a task if it has not started: still queued, or handed to a
   * worker that has not taken it yet. Returns whether it did.
   */
  #withdraw(record: TaskRecord, why: string, reason?: unknown): boolean {
    if (record.phase === "queued") {
      const index = this.#pending.indexOf(record);
      if (index >= 0) this.#pending.splice(index, 1);
    } else if (record.phase !== "sent" || !record.worker!.handle.drop(record.slot)) {
      return false;
    } else {
      record.worker!.tasksTaken--; // it never ran there
    }
    this.#settleCancelled(record, why, reason);
    return true;
  }

  /** Fails a running task with `settle`, tells it so, and replaces its worker. */
  #stopRunning(record: TaskRecord, settle: () => void): void {
    const worker = record.worker!;
    if (this.#concurrency > 1) {
      // The worker runs other tasks: only this one is told; it keeps its slot until it ends.
      worker.handle.cancel(record.slot, true);
      settle();
      return;
    }
    const ending = worker.handle.cancel(record.slot);
    settle();
    this.#retire(worker, ending);
  }

  #timeOut(record: TaskRecord): void {
    if (record.phase !== "sent") return;
    const error = new TimeoutError(
      `Task ${record.id} (${fnName(record.fn)}) timed out after ${record.timeout} ms`,
    );
    this.#stopRunning(record, () => this.#fail(record, error));
  }

  /**
   * During a shutdown, once no task is left to run: ends every worker, and
   * resolves the shutdown when the last one (retiring ones included) has
   * ended.
   */
  #endIfDrained(): void {
    if (this.#drained === undefined) return;
    if (this.#pending.length > 0) return;
    if (this.#sent > 0) return;
    for (const worker of [...this.#workers]) this.#endWorker(worker);
    clearTimeout(this.#stealTimer);
    this.#stealTimer = undefined;
    if (this.#retiring.size === 0 && this.#workers.size === 0) {
      const resolve = this.#drained.resolve;
      Promise.all(this.#ending).then(() => resolve());
    }
  }
}

// ---- helpers ---------------------------------------------------------------

/** The error of a task whose worker ended under it. */
function crashed(record: TaskRecord, worker: WorkerRecord, exit: ExitInfo): WorkerCrashedError {
  return new WorkerCrashedError({
    taskId: record.id,
    workerName: worker.name,
    exitCode: exit.code,
    signal: exit.signal,
    cause: exit.cause,
  });
}

/** Whether `worker` takes new jobs: it is starting or live. */
function inService(worker: WorkerRecord): boolean {
  return worker.state === "starting" || worker.state === "live";
}

const COMMON_OPTIONS = [
  "maxWorkers",
  "minWorkers",
  "idleTimeout",
  "maxTasksPerWorker",
  "initializer",
  "initArgs",
  "maxQueue",
  "concurrentTasksPerWorker",
  "trace",
] as const;

const TASK_OPTIONS = ["signal", "timeout", "transfer"] as const;

/**
 * Sends `records` to `worker` in one message, with the definitions of the
 * functions it has not seen. A worker counts a function as defined only once
 * a message carrying its definition has been sent.
 */
function sendRun(worker: WorkerRecord, records: TaskRecord[]): void {
  const [message, transfer] = runMessage(worker, records);
  worker.handle.send(message, transfer);
  for (const [fnId] of message.define) worker.defined.add(fnId);
}

/** Builds the batch message for `records`, defining functions the worker has not seen. */
function runMessage(worker: WorkerRecord, records: TaskRecord[]): [RunMessage, Transferable[]] {
  const define: [number, FnSpec][] = [];
  const ids: number[] = [];
  const slots: number[] = [];
  const fns: number[] = [];
  const arities: number[] = [];
  const args: unknown[] = [];
  const extras: Record<number, JobExtras> = {};
  const transfer: Transferable[] = [];
  for (let i = 0; i < records.length; i++) {
    const record = records[i];
    const fnId = fnIdOf(record.fn);
    if (!worker.defined.has(fnId) && !define.some(([id]) => id === fnId)) {
      define.push([fnId, record.fn]);
    }
    ids.push(record.id);
    slots.push(record.slot);
    fns.push(fnId);
    arities.push(record.args.length);
    for (const arg of record.args) args.push(arg);
    // Only the fields a job has: a field set to `undefined` would keep the message from going
    // between processes as JSON.
    const wantsStart = record.timeout !== Infinity || record.traced !== undefined;
    if (record.mode !== "call" || wantsStart || record.modules.length > 0) {
      const extra: { mode?: JobMode; timed?: boolean; modules?: string[] } = {};
      if (record.mode !== "call") extra.mode = record.mode;
      if (wantsStart) extra.timed = true;
      if (record.modules.length > 0) extra.modules = record.modules;
      extras[i] = extra;
    }
    for (const item of record.transfer) transfer.push(item);
  }
  // Built here, with nothing besides their items: the process channel need not list their keys.
  for (const array of [define, ids, slots, fns, arities, args]) plainArrays.add(array);
  // `extras` (integer keys) before `args`: V8's fast JSON.stringify gives up on an object with
  // integer keys, and after a long `args` that costs it about 8 ms per 125,000 items.
  return [{ type: "run", define, ids, slots, fns, arities, extras, args }, transfer];
}
