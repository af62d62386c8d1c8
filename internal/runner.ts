/**
 * The far side of a pool, shared by a thread's worker and a process's child:
 * it receives jobs, finds each function (a module export or inline source),
 * runs it, and sends back the result or the error.
 *
 * Jobs arrive in batches and run one at a time, in order; an async task is
 * awaited before the next starts, as one Python thread runs one call at a
 * time — unless the pool allows several at once (`concurrentTasksPerWorker`):
 * then the next job starts while up to that many async ones await, each with
 * its own task context. Outcomes go back in batches too: when the queue runs dry, before
 * awaiting an async task, and at least every {@linkcode FLUSH_MS} during a
 * long run of quick tasks; in a child process, before every job, with a
 * `started` message for it (`RunnerHooks.reportEachJob`).
 *
 * @module
 */

import { SerializationError } from "../errors.ts";
import { CURRENT_TASK, CURRENT_WORKER, type TaskContext } from "../tasks.ts";
import { type DescribeContext, encode, explainUnsendable, packError, revive } from "./codec.ts";
import {
  CANCELLED,
  type DoneMessage,
  FAILED,
  type FnSpec,
  type FromWorker,
  type JobExtras,
  type JobMode,
  OK,
  plainArrays,
  QUEUED,
  type RunMessage,
  RUNNING,
  SKIPPED,
  type ToWorker,
  type WorkerInit,
} from "./protocol.ts";

/** The longest a finished outcome waits before it is sent. */
const FLUSH_MS = 2;

type AnyFunction = (...args: unknown[]) => unknown;

/** Sends a message to the pool. Throws `DataCloneError` when it cannot be cloned. */
export type Post = (message: FromWorker) => void;

interface QueuedJob {
  id: number;
  slot: number;
  fn: number;
  args: unknown[];
  extras: JobExtras | undefined;
}

const NO_EXTRAS: JobExtras = {};

/** The context of a job that awaits beside others (`concurrentTasksPerWorker` > 1). */
interface JobContext extends TaskContext {
  /** The pool cancelled the job: it reads cancelled, its signal aborts. */
  cancel(): void;
  /** The job has ended: its context keeps its last state (the slot goes to another job). */
  end(): void;
}

/** What a transport may add to the runner. */
export interface RunnerHooks {
  /**
   * A child process: before each job, the outcomes so far and a `started`
   * message for the job are posted, then `writeOut` writes them. The child
   * writes synchronously, so a job that ends the child loses nothing that
   * finished before it, and the parent knows which jobs never started.
   */
  reportEachJob?: boolean;
  /**
   * Writes out what was posted, at once: called before each job (after its
   * `started` message) and whenever outcomes were sent before a wait. The
   * job waits for a promise it returns.
   */
  writeOut?(): void | Promise<void>;
  /** The job-state words when the pool cannot share its own (a process makes them locally). */
  jobStates?: SharedArrayBuffer;
  /** How results are encoded and arguments revived (a process uses the broker's). */
  context?: DescribeContext;
  /** Throws when a value cannot be sent (default: structured clone; a process checks its frame). */
  check?: (value: unknown) => unknown;
}

/** A started runner: what its transport calls. */
export interface Runner {
  /** Handles a message from the pool. */
  receive(message: ToWorker): void;
  /** Sends the outcomes not sent yet, at once (before the worker ends). */
  flush(): void;
}

/**
 * Starts a runner that talks to its pool through `post`.
 *
 * Outcomes are sent in batches, at most {@linkcode FLUSH_MS} apart; a batch
 * also leaves before a job with a timeout, so a worker stuck in such a job
 * holds no finished result, and before the worker ends (`Runner.flush`).
 */
export function startRunner(post: Post, hooks: RunnerHooks = {}): Runner {
  let jobStates: Int32Array<ArrayBufferLike> = new Int32Array(0);
  let context: DescribeContext = { transport: "thread" };
  let ready: Promise<boolean> = Promise.resolve(true);
  const specs = new Map<number, FnSpec>();
  const functions = new Map<number, AnyFunction>();
  let queue: QueuedJob[] = [];
  let head = 0;
  let draining = false;
  let done = emptyDone();
  let busySince = 0;
  let busyMs = 0;
  /** Async jobs allowed to await at once (`concurrentTasksPerWorker`). */
  let concurrency = 1;
  /** Async jobs awaiting now, by slot, with their own contexts (only when `concurrency` > 1). */
  const awaiting = new Map<number, JobContext>();
  /** Wakes `drain` when an awaiting job ends or new jobs arrive. */
  let wakeDrain: (() => void) | undefined;

  // One context object for the worker's life: tasks run one at a time, so
  // its getters read whichever slot is running now.
  let currentSlot = -1;
  let abort: AbortController | undefined;
  const taskContext: TaskContext = {
    get cancelled() {
      return currentSlot >= 0 && Atomics.load(jobStates, currentSlot) === CANCELLED;
    },
    get signal() {
      if (abort === undefined) {
        abort = new AbortController();
        if (this.cancelled) abort.abort();
      }
      return abort.signal;
    },
  };
  const globals = globalThis as Record<symbol, unknown>;
  globals[CURRENT_TASK] = taskContext;

  function emptyDone(): {
    slots: number[];
    statuses: number[];
    values: unknown[];
    modules: Record<number, string[]>;
  } {
    // `modules` (integer keys) before `values`, for JSON.stringify's fast path (see pool.ts).
    return { slots: [], statuses: [], modules: {}, values: [] };
  }

  function record(slot: number, status: number, value: unknown): void {
    if (status === FAILED) {
      value = packError(value);
    } else if (status === OK && typeof value === "object" && value !== null) {
      try {
        const encoded = encode(value, context);
        value = encoded.value;
        if (encoded.modules.length > 0) done.modules[done.slots.length] = encoded.modules;
      } catch (error) {
        status = FAILED;
        value = packError(
          explainUnsendable([value], () => "the result of a task", () => {
            throw error;
          }),
        );
      }
    }
    done.slots.push(slot);
    done.statuses.push(status);
    done.values.push(value);
  }

  function flush(): void {
    if (done.slots.length === 0) return;
    const now = performance.now();
    busyMs += now - busySince;
    busySince = now;
    const message: DoneMessage = { type: "done", ...done, busyMs };
    done = emptyDone();
    busyMs = 0;
    try {
      post(message);
    } catch {
      post(sendableDone(message, hooks.check));
    }
  }

  function findFunction(id: number): AnyFunction | Promise<AnyFunction> {
    const known = functions.get(id);
    if (known !== undefined) return known;
    const spec = specs.get(id)!;
    const found = resolveFunction(spec);
    if (typeof found === "function") {
      functions.set(id, found);
      return found;
    }
    return found.then((fn) => {
      functions.set(id, fn);
      return fn;
    });
  }

  function begin(slot: number): void {
    currentSlot = slot;
    abort = undefined;
    // Each job its own context, which it keeps across its awaits (read it before the first).
    if (concurrency > 1) globals[CURRENT_TASK] = jobContext(slot);
  }

  /** A context for one job that may await while others run. */
  function jobContext(slot: number): JobContext {
    let controller: AbortController | undefined;
    let ended = false;
    let cancelledAtEnd = false;
    const context: JobContext = {
      get cancelled() {
        return ended ? cancelledAtEnd : Atomics.load(jobStates, slot) === CANCELLED;
      },
      get signal() {
        if (controller === undefined) {
          controller = new AbortController();
          if (context.cancelled) controller.abort();
        }
        return controller.signal;
      },
      cancel() {
        Atomics.store(jobStates, slot, CANCELLED);
        controller?.abort();
      },
      end() {
        cancelledAtEnd = context.cancelled;
        ended = true;
      },
    };
    return context;
  }

  /** Lets an async job await while the worker goes on with its next jobs. */
  function awaitAlongside(job: QueuedJob, pending: PromiseLike<unknown>): void {
    const context = globals[CURRENT_TASK] as JobContext;
    awaiting.set(job.slot, context);
    currentSlot = -1;
    flush();
    hooks.writeOut?.();
    Promise.resolve(pending).then(
      (value) => record(job.slot, OK, value),
      (error) => record(job.slot, FAILED, explainError(error, specs.get(job.fn)!)),
    ).finally(() => {
      context.end();
      awaiting.delete(job.slot);
      flush();
      hooks.writeOut?.();
      wakeDrain?.();
    });
  }

  /** Waits until an awaiting job ends or new jobs arrive. */
  function nextWake(): Promise<void> {
    return new Promise((resolve) => {
      wakeDrain = () => {
        wakeDrain = undefined;
        resolve();
      };
    });
  }

  function end(): void {
    currentSlot = -1;
    abort = undefined;
  }

  /** Runs a job that needs an import, a revival or an await. */
  async function runSlowly(
    job: QueuedJob,
    found: AnyFunction | Promise<AnyFunction>,
  ): Promise<void> {
    const extras = job.extras ?? NO_EXTRAS;
    const spec = specs.get(job.fn)!;
    try {
      flush();
      hooks.writeOut?.();
      const fn = await found;
      const args = extras.modules ? await revive(job.args, extras.modules, context) : job.args;
      begin(job.slot);
      const value = apply(fn, extras.mode ?? "call", args);
      if (isThenable(value)) {
        if (concurrency > 1) return awaitAlongside(job, value);
        return await settleLater(job, value);
      }
      end();
      record(job.slot, OK, value);
    } catch (error) {
      end();
      record(job.slot, FAILED, explainError(error, spec));
    }
  }

  /** Awaits an async task's result; the worker takes no other job meanwhile. */
  async function settleLater(job: QueuedJob, pending: PromiseLike<unknown>): Promise<void> {
    flush();
    hooks.writeOut?.();
    try {
      record(job.slot, OK, await pending);
    } catch (error) {
      record(job.slot, FAILED, explainError(error, specs.get(job.fn)!));
    } finally {
      end();
    }
  }

  async function drain(): Promise<void> {
    draining = true;
    if (!await ready) return;
    busySince = performance.now();
    let flushAt = busySince + FLUSH_MS;
    while (head < queue.length) {
      const job = queue[head++];
      if (Atomics.compareExchange(jobStates, job.slot, QUEUED, RUNNING) !== QUEUED) {
        record(job.slot, SKIPPED, undefined);
        continue;
      }
      const extras = job.extras;
      // A job that may run long goes with nothing finished left unsent; the pool times
      // it from its `started` message.
      if (hooks.reportEachJob || extras?.timed) {
        flush();
        post({ type: "started", slot: job.slot });
        const written = hooks.writeOut?.();
        if (written) await written;
      }
      let found: AnyFunction | Promise<AnyFunction>;
      try {
        found = findFunction(job.fn);
      } catch (error) {
        record(job.slot, FAILED, explainError(error, specs.get(job.fn)!));
        continue;
      }
      if (typeof found !== "function" || extras?.modules) {
        await runSlowly(job, found);
      } else {
        begin(job.slot);
        let value: unknown;
        let failed = false;
        try {
          value = extras?.mode ? apply(found, extras.mode, job.args) : found(...job.args);
        } catch (error) {
          value = explainError(error, specs.get(job.fn)!);
          failed = true;
        }
        if (!failed && isThenable(value)) {
          if (concurrency > 1) awaitAlongside(job, value);
          else await settleLater(job, value);
        } else {
          end();
          record(job.slot, failed ? FAILED : OK, value);
        }
      }
      const now = performance.now();
      if (now >= flushAt) {
        flush();
        flushAt = now + FLUSH_MS;
      }
      if (awaiting.size > 0 && (awaiting.size >= concurrency || head >= queue.length)) {
        // About to wait for awaiting jobs: what finished meanwhile goes now, not after them.
        flush();
        hooks.writeOut?.();
      }
      while (awaiting.size >= concurrency) await nextWake();
      // Jobs still awaiting: wait for them, or for new jobs to start beside them.
      while (head >= queue.length && awaiting.size > 0) await nextWake();
    }
    queue = [];
    head = 0;
    draining = false;
    flush();
    hooks.writeOut?.();
  }

  function accept(message: RunMessage): void {
    for (const [id, spec] of message.define) specs.set(id, spec);
    const { ids, slots, fns, arities, args, extras } = message;
    let next = 0;
    for (let i = 0; i < slots.length; i++) {
      // Words made on this side are reset here; a pool that shares them resets them itself.
      if (hooks.jobStates) Atomics.store(jobStates, slots[i], QUEUED);
      const end = next + arities[i];
      queue.push({
        id: ids[i],
        slot: slots[i],
        fn: fns[i],
        args: args.slice(next, end),
        extras: extras[i],
      });
      next = end;
    }
    if (!draining) drain();
    else wakeDrain?.();
  }

  const receive = (message: ToWorker) => {
    switch (message.type) {
      case "run":
        accept(message);
        break;
      case "cancel":
        // A job not started yet is skipped when its turn comes (a process's words are its
        // own; a pool that shares them has already marked them); a running one is told.
        if (Atomics.compareExchange(jobStates, message.slot, QUEUED, CANCELLED) !== QUEUED) {
          if (message.slot === currentSlot) {
            Atomics.store(jobStates, message.slot, CANCELLED);
            abort?.abort();
          }
          awaiting.get(message.slot)?.cancel();
        }
        break;
      case "init": {
        const init = message.init;
        jobStates = new Int32Array(hooks.jobStates ?? init.jobStates!);
        context = hooks.context ?? { transport: init.kind };
        globals[CURRENT_WORKER] = { name: init.name, id: init.id, kind: init.kind };
        concurrency = init.concurrency ?? 1;
        ready = runInitializer(init, context).then(() => {
          post({ type: "ready" });
          return true;
        }, (error) => {
          post({ type: "init-failed", error: packError(explainError(error, init.initializer!)) });
          return false;
        });
        break;
      }
    }
  };
  return { receive, flush };
}

/** Replaces each result or error in `message` that cannot be sent with a SerializationError. */
export function sendableDone(
  message: DoneMessage,
  check?: (value: unknown) => unknown,
): DoneMessage {
  const statuses = [...message.statuses];
  const values = message.values.map((value, i) => {
    if (statuses[i] === SKIPPED) return value;
    const what = statuses[i] === OK ? "the result" : "the error";
    const problem = explainUnsendable([value], () => `${what} of a task`, check);
    if (problem === undefined) return value;
    statuses[i] = FAILED;
    return packError(problem);
  });
  return { ...message, statuses, values };
}

async function runInitializer(init: WorkerInit, context: DescribeContext): Promise<void> {
  if (init.initializer === undefined) return;
  const fn = await resolveFunction(init.initializer);
  const args = init.initModules.length === 0
    ? init.initArgs
    : await revive(init.initArgs, init.initModules, context);
  await fn(...args);
}

/**
 * Calls `fn` as the job's mode says. A chunk (`map`, `starmap`) of an async
 * function runs its items concurrently and resolves when all have.
 */
function apply(fn: AnyFunction, mode: JobMode, args: unknown[]): unknown {
  if (mode === "call") return fn(...args);
  const items = args[0] as unknown[];
  const results = new Array(items.length);
  let async = false;
  for (let i = 0; i < items.length; i++) {
    const value = mode === "map" ? fn(items[i]) : fn(...(items[i] as unknown[]));
    if (!async && isThenable(value)) async = true;
    results[i] = value;
  }
  if (async) return Promise.all(results).then(markPlain);
  return markPlain(results);
}

function markPlain(array: unknown[]): unknown[] {
  plainArrays.add(array);
  return array;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null &&
    typeof (value as PromiseLike<unknown>).then === "function";
}

const compiled = new Map<string, AnyFunction>();
const loading = new Map<string, Promise<Record<string, unknown>>>();

/** The function a spec names: at once for inline source, a promise for a module export. */
function resolveFunction(spec: FnSpec): AnyFunction | Promise<AnyFunction> {
  if ("source" in spec) {
    let fn = compiled.get(spec.source);
    if (fn === undefined) {
      fn = compile(spec.source, spec.name);
      compiled.set(spec.source, fn);
    }
    return fn;
  }
  let pending = loading.get(spec.module);
  if (pending === undefined) {
    pending = import(spec.module);
    pending.catch(() => loading.delete(spec.module));
    loading.set(spec.module, pending);
  }
  return pending.then((module) => exported(module, spec));
}

function exported(
  module: Record<string, unknown>,
  spec: { module: string; name: string },
): AnyFunction {
  const fn = module[spec.name];
  if (typeof fn === "function") return fn as AnyFunction;
  const functions = Object.keys(module).filter((key) => typeof module[key] === "function");
  throw new TypeError(
    `Module ${spec.module} has no exported function "${spec.name}"` +
      (fn === undefined ? "" : ` (its export "${spec.name}" is ${typeof fn})`) +
      `; its exported functions are: ${functions.join(", ") || "(none)"}`,
  );
}

/**
 * Globals of a worker or child that a parent's variable is likely to be
 * named like (`const name = "Alice"`). An inline task that uses one of these
 * names without declaring it meant its parent's variable, which did not
 * travel: it must fail with a `ReferenceError`, not read the worker's global.
 */
const SHADOWED = [
  "name",
  "close",
  "self",
  "location",
  "postMessage",
  "onmessage",
  "onmessageerror",
  "onerror",
  "onload",
  "onunload",
  "onbeforeunload",
  "alert",
  "confirm",
  "prompt",
  "localStorage",
  "sessionStorage",
];
const MENTIONS_SHADOWED = new RegExp(`\\b(?:${SHADOWED.join("|")})\\b`);

/**
 * Scope for inline tasks that mention a {@linkcode SHADOWED} name: reading
 * one that the task did not declare itself throws the `ReferenceError` the
 * parent's variable would have. (`globalThis.name` still reads the global.)
 */
const shadowScope = new Proxy(Object.create(null), {
  has: (_target, key) => typeof key === "string" && SHADOWED.includes(key),
  get(_target, key) {
    if (key === Symbol.unscopables) return undefined;
    throw new ReferenceError(`${String(key)} is not defined`);
  },
  set(_target, key) {
    throw new ReferenceError(`${String(key)} is not defined`);
  },
});

/** Evaluates `expression` in global scope, behind {@linkcode shadowScope} if it needs it. */
function evaluate(expression: string): unknown {
  if (!MENTIONS_SHADOWED.test(expression)) return (0, eval)(expression);
  // Sloppy mode (`with`) only for the few inline tasks that mention such a name.
  return new Function("scope", `with (scope) return (${expression});`)(shadowScope);
}

function compile(source: string, name: string): AnyFunction {
  let fn: unknown;
  try {
    fn = evaluate(`(${source})`);
  } catch {
    // A method shorthand (`f(x) { … }`) is not an expression on its own.
    try {
      fn = (evaluate(`({ ${source} })`) as Record<string, unknown>)[name];
    } catch (error) {
      throw new SerializationError(
        `Cannot compile inline task "${name}" in the worker: ${(error as Error).message}. ` +
          `Pass a self-contained function, or export it from a module and use tasks(url).`,
        { cause: error },
      );
    }
  }
  if (typeof fn !== "function") {
    throw new SerializationError(`Inline task "${name}" did not compile to a function`);
  }
  return fn as AnyFunction;
}

/** Points an inline task that used an outer variable to `tasks()`. */
function explainError(error: unknown, spec: FnSpec): unknown {
  if (!("source" in spec) || !(error instanceof ReferenceError)) return error;
  const missing = /^(\S+) is not defined/.exec(error.message)?.[1];
  if (missing === undefined) return error;
  const label = spec.name || "(anonymous)";
  return new ReferenceError(
    `Inline task "${label}" uses "${missing}", which does not exist in the worker: an inline ` +
      `function travels as source text, so it must be self-contained. Pass "${missing}" as an ` +
      `argument, or export the function from a module and submit tasks(url).${
        spec.name || "yourFunction"
      }.`,
    { cause: error },
  );
}
