/**
 * The messages between a pool (`internal/pool.ts`) and the runner on the far
 * side (`internal/runner.ts`), whatever carries them: a Worker's
 * `postMessage` or a process's framed channel.
 *
 * Jobs travel in batches, several in flight per worker, so a flood of tiny
 * tasks costs one message per turn of the event loop, not one per task. Each
 * in-flight job owns a slot in the worker's shared `jobStates` words:
 *
 * ```
 * jobStates: Int32Array(capacity)      one word per slot
 *   QUEUED    0  sent, not started     pool may withdraw it (CAS → WITHDRAWN)
 *   RUNNING   1  the runner took it    (CAS QUEUED → RUNNING)
 *   CANCELLED 2  cancelled or withdrawn; a running task sees
 *                currentTask().cancelled, a queued one is skipped
 * ```
 *
 * The compare-and-swap on the slot settles the one race that matters: a job
 * either starts or is withdrawn, never both, so after a crash the pool knows
 * exactly which jobs never ran (and can run them elsewhere) and which did
 * (and must fail with `WorkerCrashedError`).
 *
 * @module
 */

/** The slot states; see the module comment. */
export const QUEUED = 0;
/** See {@linkcode QUEUED}. */
export const RUNNING = 1;
/** See {@linkcode QUEUED}. */
export const CANCELLED = 2;

/**
 * Arrays the library built itself (a map chunk, a chunk's results): they
 * hold nothing besides their items, so the process channel sends them as
 * JSON without listing their keys to look for other properties, which costs
 * about 10 ms per 125,000 items. Any other array is checked.
 */
export const plainArrays: WeakSet<unknown[]> = new WeakSet();

/** How the far side finds the function to run. */
export type FnSpec =
  | { readonly module: string; readonly name: string }
  | { readonly source: string; readonly name: string };

/**
 * How a job applies its function: `call` spreads `args`; `map` calls it on
 * each item of `args[0]`; `starmap` spreads each item of `args[0]`.
 */
export type JobMode = "call" | "map" | "starmap";

/** What a job needs beyond its slot, function and arguments; most jobs need none. */
export interface JobExtras {
  /** Default `"call"`. */
  readonly mode?: JobMode;
  /** The pool wants a `started` message (the task has a timeout). */
  readonly timed?: boolean;
  /** Modules to import to revive library objects in the arguments. */
  readonly modules?: string[];
}

/**
 * A batch of jobs as parallel arrays, entry `i` describing job `i`: cheaper
 * to clone than an object per job. Functions are sent once per worker
 * (`define`) and named by number after that.
 */
export interface RunMessage {
  readonly type: "run";
  readonly define: [number, FnSpec][];
  /** Task ids, unique within the program. */
  readonly ids: number[];
  readonly slots: number[];
  readonly fns: number[];
  /** How many of `args` each job takes, in order. */
  readonly arities: number[];
  /** Every job's arguments, one after another (no array per job to clone). */
  readonly args: unknown[];
  /** Extras by job index, for the few jobs that have them. */
  readonly extras: Record<number, JobExtras>;
}

/** What the far side learns when it starts. */
export interface WorkerInit {
  readonly name: string;
  readonly id: number;
  readonly kind: "thread" | "process";
  /** The slot words shared with the pool (see the module comment); a process makes its own. */
  readonly jobStates?: SharedArrayBuffer;
  readonly initializer?: FnSpec;
  readonly initArgs: unknown[];
  readonly initModules: string[];
  /** Tasks the worker runs at once (`concurrentTasksPerWorker`); 1 when left out. */
  readonly concurrency?: number;
}

/** Pool → worker. */
export type ToWorker =
  | { readonly type: "init"; readonly init: WorkerInit }
  | RunMessage
  | { readonly type: "cancel"; readonly slot: number };

/** How a job ended: see {@linkcode DoneMessage}. */
export const OK = 0;
/** See {@linkcode OK}. */
export const FAILED = 1;
/** The job was withdrawn before it started. See {@linkcode OK}. */
export const SKIPPED = 2;

/** Finished jobs as parallel arrays, entry `i` describing job `i`. */
export interface DoneMessage {
  readonly type: "done";
  readonly slots: number[];
  /** `OK`, `FAILED` or `SKIPPED`. */
  readonly statuses: number[];
  /** The result, or the error. */
  readonly values: unknown[];
  /** Modules to import to revive library objects in a result, by job index. */
  readonly modules: Record<number, string[]>;
  /** Time spent running these jobs, which sizes the next batches. */
  readonly busyMs: number;
}

/** Worker → pool. */
export type FromWorker =
  /** The initializer (if any) succeeded; jobs run from here on. Sent once, before anything else. */
  | { readonly type: "ready" }
  | { readonly type: "started"; readonly slot: number }
  | DoneMessage
  | { readonly type: "init-failed"; readonly error: unknown }
  /** Sent by the worker itself as it ends, since Deno tells the main thread nothing. */
  | { readonly type: "exit"; readonly code: number | null; readonly reason: string };
