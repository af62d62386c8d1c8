// A transport with no worker behind it: each FakeWorker records what the
// scheduler sends and lets a test play the worker's side, one message at a
// time, so the scheduler's decisions can be checked deterministically.
import { Pool, type PoolOptions, registerTransport, type WorkerHandle } from "../internal/pool.ts";
import { FAILED, OK, type RunMessage, SKIPPED, type ToWorker } from "../internal/protocol.ts";

/** A job as the fake worker received it. */
export interface FakeJob {
  id: number;
  slot: number;
  fn: number;
  args: unknown[];
}

export class FakeWorker {
  readonly name: string;
  readonly messages: ToWorker[] = [];
  readonly started = new Set<number>();
  readonly withdrawn = new Set<number>();
  readonly cancelled: number[] = [];
  /** Function ids this worker was sent the definition of. */
  readonly defined = new Set<number>();
  terminated = false;
  /**
   * Plays a child process: a cancel kills it, and it can withdraw jobs only
   * once it is dead (what it wrote says which had started); a live one can
   * only drop a job it has not said it started.
   */
  likeProcess = false;
  exited = false;
  readonly handle: WorkerHandle;

  constructor(name: string, failSend: (message: ToWorker) => boolean) {
    this.name = name;
    this.handle = {
      send: (message) => {
        if (failSend(message)) throw new DOMException("cannot clone", "DataCloneError");
        this.messages.push(message);
        if (message.type === "run") { for (const [id] of message.define) this.defined.add(id); }
      },
      withdraw: (slot) => {
        if (this.started.has(slot) || (this.likeProcess && !this.exited)) return false;
        this.withdrawn.add(slot);
        return true;
      },
      drop: (slot) => {
        if (this.started.has(slot)) return false;
        this.withdrawn.add(slot);
        return true;
      },
      started: (slot) => this.started.has(slot),
      cancel: (slot) => {
        this.cancelled.push(slot);
        return this.likeProcess;
      },
      terminate: () => {
        this.terminated = true;
      },
      onMessage: () => {},
      onExit: () => {},
    };
  }

  /** Every job received, in order. */
  get jobs(): FakeJob[] {
    const jobs: FakeJob[] = [];
    for (const message of this.messages) {
      if (message.type !== "run") continue;
      const run = message as RunMessage;
      let next = 0;
      run.slots.forEach((slot, i) => {
        jobs.push({
          id: run.ids[i],
          slot,
          fn: run.fns[i],
          args: run.args.slice(next, next + run.arities[i]),
        });
        next += run.arities[i];
      });
    }
    return jobs;
  }

  /** The job of task `id`. */
  job(id: number): FakeJob {
    const job = this.jobs.find((job) => job.id === id);
    if (job === undefined) throw new Error(`${this.name} was not given task ${id}`);
    return job;
  }

  ready(): void {
    this.handle.onMessage({ type: "ready" });
  }

  start(id: number): void {
    this.started.add(this.job(id).slot);
  }

  /** Answers the jobs of tasks `ids` with `value(id)`; they start first if they had not. */
  answer(ids: number[], value: (id: number) => unknown = (id) => id, status = OK): void {
    const slots = ids.map((id) => this.job(id).slot);
    for (const slot of slots) this.started.add(slot);
    this.handle.onMessage({
      type: "done",
      slots,
      statuses: slots.map(() => status),
      values: ids.map(value),
      modules: {},
      busyMs: 0.001 * ids.length,
    });
  }

  fail(id: number, error: unknown): void {
    this.answer([id], () => error, FAILED);
  }

  /** Reports the withdrawn jobs skipped, as a runner does when it reaches them. */
  skipWithdrawn(): void {
    const slots = [...this.withdrawn];
    this.withdrawn.clear();
    this.handle.onMessage({
      type: "done",
      slots,
      statuses: slots.map(() => SKIPPED),
      values: slots.map(() => undefined),
      modules: {},
      busyMs: 0,
    });
  }

  exit(code = 1): void {
    this.exited = true;
    this.handle.onExit({ code, signal: null, cause: new Error(`exited with ${code}`) });
  }
}

/** The fake workers started so far, in order. */
export const fakes: FakeWorker[] = [];

/** Makes a send fail; by default none does. */
export let failSend: (message: ToWorker) => boolean = () => false;
export function setFailSend(predicate: (message: ToWorker) => boolean): void {
  failSend = predicate;
}

/** Makes the spawn of the worker numbered `index` (0-based) throw; by default none does. */
let failSpawnAt = -1;
export function setFailSpawnAt(index: number): void {
  failSpawnAt = index;
}

registerTransport("fake", {
  spawn(init) {
    if (fakes.length === failSpawnAt) {
      failSpawnAt = -1;
      throw new Error("spawn failed");
    }
    const worker = new FakeWorker(init.name, (message) => failSend(message));
    fakes.push(worker);
    return worker.handle;
  },
  extraOptions: [],
  context: { transport: "thread" },
  check(value) {
    if (value === "unsendable") throw new DOMException("cannot clone", "DataCloneError");
    return value;
  },
});

/** A pool on fake workers; `fakes` is emptied first. */
export function fakePool(options: PoolOptions = {}): Pool {
  fakes.length = 0;
  failSend = () => false;
  return new Pool("fake", options, "FakePool");
}

/** Lets the scheduler's queued microtasks (its pump) run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
