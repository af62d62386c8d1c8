/**
 * `serveRedisPool`: a machine lends its cores to a `RedisPool`, running the
 * pool's tasks on a local `ThreadPool` or `ProcessPool` — only the tasks it
 * trusts.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { Task } from "../futures.ts";
import { packError, reviveWith } from "../internal/codec.ts";
import { show, wholeNumber } from "../internal/options.ts";
import { type Pool, submitSpec } from "../internal/pool.ts";
import type { FnSpec, JobMode } from "../internal/protocol.ts";
import { settledWithin } from "../internal/wait.ts";
import { itemFromBytes, itemToBytes } from "../queue/_ring.ts";
import { checkServerOptions, Connections, decode, evalScript } from "./_connection.ts";
import {
  DROP_RUNNING,
  FINISH_AND_TAKE,
  LEAVE,
  poolKeys,
  readJobItem,
  RETURNED,
  RUNNING_IDS,
  THREW,
} from "./_protocol.ts";
import { recoverDeadWorkers } from "./pool.ts";

/** Options of {@linkcode serveRedisPool}. */
export interface ServeRedisPoolOptions {
  /** The server, as `redis://host:port`. */
  url: string;
  /** The pool to serve: the `name` its `RedisPool` was given. */
  name: string;
  /** The local pool that runs the tasks: a `ThreadPool` or a `ProcessPool`. It is shut down by `close()`. */
  pool: Pool;
  /**
   * URL prefixes of the task modules this worker may import
   * (`"https://example.com/work/"`, `"file:///srv/work/"`). A task whose module is
   * elsewhere fails with an error saying so, and the worker goes on.
   */
  modules: string[];
  /** Run inline functions (source text sent through Redis). Default: `false`. */
  allowInline?: boolean;
  /** How many tasks it runs at once. Default: `navigator.hardwareConcurrency`. */
  concurrency?: number;
}

/** A running worker of a Redis pool. */
export interface RedisPoolWorker {
  /** This worker's id in Redis. */
  readonly id: string;
  /**
   * Stops taking tasks, finishes those it holds, then shuts its local pool
   * down. Results that cannot reach Redis within 5 s (the server is down)
   * are given up: their tasks run again elsewhere, as after a crash.
   */
  close(): Promise<void>;
}

/** A job this worker took, as it runs it. */
interface Claimed {
  readonly id: string;
  readonly client: string;
  readonly body: Uint8Array;
  readonly timeout: number;
  readonly stalledAfter: number;
}

/** After a failed wait (a key of the wrong type, a closed link): a pause, so as not to spin. */
function pause(): Promise<null> {
  return new Promise((resolve) => setTimeout(() => resolve(null), 50));
}

/** The run time a batch of jobs a worker takes at once may add up to, in milliseconds. */
const BATCH_BUDGET_MS = 2;
/** The most jobs a worker takes at once. */
const MAX_BATCH = 64;

/** How long a closing worker gives its last results (and its leaving) to reach Redis. */
const RESULTS_GRACE_MS = 5_000;

/** How long a blocking wait for a task or a cancel lasts before the worker looks around. */
const SLICE_MS = 500;

/**
 * Serves a `RedisPool` from this machine: takes its tasks from Redis and runs
 * them on `pool`. **It runs only what it trusts:** a task module under one of
 * the `modules` prefixes (compared after the URL is normalised, so `..` cannot
 * climb out), and inline functions only with `allowInline: true`; anything
 * else fails that task with a clear error. A task cancelled by its submitter
 * is cancelled here as a local pool's would be. The worker renews a sign of
 * life in Redis; should it die, its tasks run again elsewhere.
 *
 * @example
 * ```ts ignore
 * import { ProcessPool } from "@parallel/core";
 * import { serveRedisPool } from "@parallel/core/redis";
 * const worker = await serveRedisPool({
 *   url: "redis://127.0.0.1:6379",
 *   name: "render",
 *   pool: new ProcessPool({ maxWorkers: 8 }),
 *   modules: ["file:///srv/work/"],
 * });
 * // later: await worker.close();
 * ```
 *
 * @param options See {@linkcode ServeRedisPoolOptions}.
 * @returns The worker, once it is registered.
 */
export async function serveRedisPool(options: ServeRedisPoolOptions): Promise<RedisPoolWorker> {
  const where = "serveRedisPool";
  checkServerOptions(options, ["pool", "modules", "allowInline", "concurrency"], where);
  if (!Array.isArray(options.modules) || !options.modules.every((m) => typeof m === "string")) {
    throw new TypeError(
      `${where}: 'modules' must be an array of URL prefixes: current value is ${
        show(options.modules)
      }`,
    );
  }
  if (options.allowInline !== undefined && typeof options.allowInline !== "boolean") {
    throw new TypeError(
      `${where}: 'allowInline' must be a boolean: current value is ${show(options.allowInline)}`,
    );
  }
  for (const prefix of options.modules) {
    if (!URL.canParse(prefix)) {
      throw new TypeError(
        `${where}: 'modules' must be URL prefixes: ${show(prefix)} is not an absolute URL`,
      );
    }
  }
  const worker = new Worker(options);
  await worker.start();
  return worker;
}

class Worker implements RedisPoolWorker {
  readonly id = crypto.randomUUID();
  readonly #options: ServeRedisPoolOptions;
  readonly #keys: ReturnType<typeof poolKeys>;
  readonly #connections: Connections;
  readonly #prefixes: string[];
  readonly #concurrency: number;
  readonly #running = new Map<string, Task<unknown>>();
  /** Ids of the jobs this worker has taken and not finished. */
  readonly #known = new Set<string>();
  /** Ids seen once in `running` that this worker did not know of (see #adoptOrphans). */
  readonly #suspects = new Set<string>();
  /** The measured run time of a job, for the size of a batch. */
  #msPerJob?: number;
  /** Ids of jobs cancelled after this worker took them and before they started. */
  readonly #cancelledEarly = new Set<string>();
  /** Jobs adopted, waiting for a loop. */
  readonly #orphans: Claimed[] = [];
  #stopping = false;
  #closing = false;
  /** Batches of jobs running now, and who waits for there to be none. */
  #executing = 0;
  #idle?: PromiseWithResolvers<void>;
  #takeLoops: Promise<void>[] = [];
  #cancelling?: Promise<void>;
  #heartbeat?: ReturnType<typeof setInterval>;
  #livesFor = 30_000;

  constructor(options: ServeRedisPoolOptions) {
    this.#options = options;
    this.#keys = poolKeys(options.name);
    this.#connections = new Connections(options.url, `serveRedisPool "${options.name}"`);
    this.#prefixes = options.modules.map((prefix) => new URL(prefix).href);
    this.#concurrency = wholeNumber(
      options.concurrency ?? navigator.hardwareConcurrency ?? 1,
      "concurrency",
      1,
      "serveRedisPool",
    );
  }

  async start(): Promise<void> {
    await this.#beat();
    await this.#connections.main.run((client) => client.sAdd(this.#keys.workers, this.id));
    let beats = 0;
    this.#heartbeat = setInterval(() => {
      void this.#beat().catch(() => {});
      if (++beats % 4 === 0) {
        void recoverDeadWorkers(this.#connections, this.#keys).catch(() => {});
        void this.#adoptOrphans().catch(() => {});
      }
    }, 250);
    for (let i = 0; i < this.#concurrency; i++) this.#takeLoops.push(this.#takeLoop());
    this.#cancelling = this.#cancelLoop();
  }

  async close(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    // The jobs it holds finish; their results get a while to reach Redis. A server that is down
    // must not hold close() up for ever: those jobs run again elsewhere, as after a crash.
    const taking = Promise.all(this.#takeLoops);
    // A batch that starts meanwhile (what a last wait moved) is held too: it finishes before
    // LEAVE, which would otherwise give it back to run again elsewhere as it runs here.
    do {
      await Promise.race([
        taking,
        this.#jobsDone().then(() => settledWithin(taking, RESULTS_GRACE_MS)),
      ]);
    } while (this.#executing > 0);
    // Cancels are heard until here: the jobs it held may have been cancelled meanwhile.
    this.#closing = true;
    clearInterval(this.#heartbeat);
    const leave = this.#connections.main.run((client) =>
      evalScript(client, LEAVE, {
        keys: [
          this.#keys.running(this.id),
          this.#keys.tasks,
          this.#keys.workers,
          this.#keys.alive(this.id),
          this.#keys.cancel(this.id),
        ],
        arguments: [this.id, this.#keys.job("")],
      })
    ).catch(() => {});
    await settledWithin(leave, RESULTS_GRACE_MS);
    // Closing the connections ends whatever still waits on them.
    await this.#connections.close();
    await Promise.all([taking, this.#cancelling]);
    await this.#options.pool.shutdown();
  }

  /** Resolves once no batch of jobs is running here. */
  #jobsDone(): Promise<void> {
    if (this.#executing === 0) return Promise.resolve();
    this.#idle ??= Promise.withResolvers<void>();
    return this.#idle.promise;
  }

  /** Renews this worker's sign of life, for as long as its tasks allow. */
  async #beat(): Promise<void> {
    await this.#connections.main.run(async (client) => {
      await client.set(this.#keys.alive(this.id), "1", { PX: Math.max(1_000, this.#livesFor) });
      // Again each time: a server restarted without its data, or a recovery that found this
      // worker silent for too long, forgot it, and the jobs it takes from now on must be found
      // should it die. (Not while closing: close() takes it out.)
      if (!this.#closing) await client.sAdd(this.#keys.workers, this.id);
    });
  }

  async #takeLoop(): Promise<void> {
    let next: Claimed[] = [];
    // Whether the last finish found no job to take: then the loop waits at once.
    let foundNone = false;
    // While stopping, what a last wait moved into `running` still runs: nobody else would.
    while (!this.#stopping || next.length > 0) {
      // Whatever a job holds (a key of the wrong type, garbage fields), this loop goes on.
      if (next.length === 0) {
        const orphan = this.#orphans.shift();
        if (orphan !== undefined) next = [orphan];
        else if (!foundNone) next = await this.#finishAndTake([]).catch(pause) ?? [];
      }
      if (next.length === 0) {
        foundNone = false;
        const waited = await this.#waitForJob().catch(pause);
        if (waited) next = [waited];
        continue;
      }
      // A batch of jobs runs at once on the local pool, and their results go back together
      // with the take of the next batch: one round trip for many tiny tasks.
      const started = performance.now();
      this.#executing++;
      let items: Uint8Array[];
      try {
        items = await Promise.all(next.map((job) => this.#execute(job)));
      } finally {
        if (--this.#executing === 0) {
          this.#idle?.resolve();
          this.#idle = undefined;
        }
      }
      this.#measure((performance.now() - started) / next.length);
      const done = next.map((job, i) => ({ id: job.id, client: job.client, item: items[i] }));
      next = await this.#finishAndTake(done).catch(pause) ?? [];
      foundNone = next.length === 0;
    }
  }

  /** Sizes the batch a loop takes from the time a job has been taking: about 2 ms of work. */
  #measure(msPerJob: number): void {
    this.#msPerJob = this.#msPerJob === undefined
      ? msPerJob
      : this.#msPerJob * 0.7 + msPerJob * 0.3;
  }

  #batch(): number {
    if (this.#stopping) return 0;
    const ms = this.#msPerJob;
    return ms === undefined
      ? 1
      : Math.max(1, Math.min(MAX_BATCH, Math.floor(BATCH_BUDGET_MS / ms)));
  }

  async #cancelLoop(): Promise<void> {
    while (!this.#closing) {
      const popped = await this.#connections.blocking(
        `${this.#keys.cancel(this.id)}:unused:`,
        ({ link }) =>
          link.run((client) => client.blPop(this.#keys.cancel(this.id), SLICE_MS / 1000), SLICE_MS),
      ).catch(pause);
      if (popped === null || popped === undefined) continue;
      const id = decode((popped as { element: Uint8Array | string }).element);
      const task = this.#running.get(id);
      if (task !== undefined) task.cancel();
      // A cancel for a job this worker took but has not started yet: cancelled as it starts.
      else if (this.#known.has(id)) this.#cancelledEarly.add(id);
    }
  }

  /** Waits (a while) for a job while there is none: a job that arrives is taken as it comes. */
  async #waitForJob(): Promise<Claimed | undefined> {
    const moved = await this.#connections.blocking(
      `${this.#keys.running(this.id)}:unused:`,
      ({ link }) =>
        link.run(
          (client) =>
            client.blMove(
              this.#keys.tasks,
              this.#keys.running(this.id),
              "LEFT",
              "RIGHT",
              SLICE_MS / 1000,
            ),
          SLICE_MS,
        ),
    ).catch(() => null);
    if (moved === null || moved === undefined) return undefined;
    return this.#claimed(moved as Uint8Array);
  }

  /**
   * Gives the finished jobs' results, then takes the next batch, in one
   * round trip; nothing more while stopping.
   */
  async #finishAndTake(
    done: { id: string; client: string; item: Uint8Array }[],
  ): Promise<Claimed[]> {
    const results = this.#keys.resultItems("\u0000");
    const [resultsPrefix, resultsSuffix] = results.split("\u0000");
    const reply = await this.#connections.main.run((client) =>
      evalScript(client, FINISH_AND_TAKE, {
        keys: [this.#keys.tasks, this.#keys.running(this.id)],
        arguments: [
          this.#keys.job(""),
          resultsPrefix,
          resultsSuffix,
          String(this.#batch()),
          ...done.flatMap((job) => [job.id, job.client, Buffer.from(job.item)]),
        ],
      })
    ) as unknown as Uint8Array[];
    for (const job of done) this.#known.delete(job.id);
    return reply.map((item) => this.#claimed(item));
  }

  /** A job this worker took, from its list item (garbage becomes a job that fails). */
  #claimed(item: Uint8Array): Claimed {
    const job = readJobItem(item) ??
      { id: `garbage-${crypto.randomUUID()}`, client: "", timeout: 0, stalledAfter: 0, body: item };
    this.#known.add(job.id);
    return {
      id: job.id,
      client: job.client,
      body: job.body,
      timeout: job.timeout || Infinity,
      stalledAfter: job.stalledAfter,
    };
  }

  /** Adopts the jobs in this worker's `running` list that it lost track of (see `_protocol.ts`). */
  async #adoptOrphans(): Promise<void> {
    const running = this.#keys.running(this.id);
    const listed = await this.#connections.main.run((client) =>
      evalScript(client, RUNNING_IDS, { keys: [running], arguments: [] })
    ) as (Uint8Array | string)[];
    const ids = new Set(listed.map((raw) => decode(raw)));
    for (const id of ids) {
      if (this.#known.has(id)) continue;
      if (!this.#suspects.has(id)) {
        this.#suspects.add(id);
        continue;
      }
      this.#suspects.delete(id);
      const [item, cancelled] = await this.#connections.main.run((client) =>
        client.hmGet(this.#keys.job(id), ["item", "cancelled"])
      ).catch((error) => {
        // A job key of another type (a forged job) is no job; it must not stop the others.
        if (String((error as Error)?.message).startsWith("WRONGTYPE")) return [null, null];
        throw error;
      }) as (Uint8Array | string | null)[];
      if (item === null || typeof item === "string" || readJobItem(item)?.id !== id) {
        // No such job (or not one of ours): its item goes, whatever it is.
        await this.#connections.main.run((client) =>
          evalScript(client, DROP_RUNNING, { keys: [running], arguments: [id] })
        );
        continue;
      }
      if (cancelled !== null && cancelled !== undefined) {
        // Cancelled by its submitter (whose cancel found this worker not knowing the job yet):
        // dropped, as the recovery of a dead worker's jobs drops it, not run.
        await this.#connections.main.run(async (client) => {
          await evalScript(client, DROP_RUNNING, { keys: [running], arguments: [id] });
          await client.del(this.#keys.job(id));
        });
        continue;
      }
      this.#orphans.push(this.#claimed(item));
    }
    for (const id of this.#suspects) if (!ids.has(id)) this.#suspects.delete(id);
  }

  /** Runs one claimed job; returns its result as a results-queue item. */
  async #execute(job: Claimed): Promise<Uint8Array> {
    if (job.stalledAfter > 0 && job.stalledAfter < this.#livesFor) {
      this.#livesFor = job.stalledAfter;
      // Not awaited: a server that is down must not keep the job (and close()) waiting.
      void this.#beat().catch(() => {});
    }
    let status = RETURNED;
    let value: unknown;
    try {
      const { fn, mode, args } = itemFromBytes(job.body) as {
        fn: FnSpec;
        mode: JobMode;
        args: unknown[];
      };
      if (mode !== "call" && mode !== "map" && mode !== "starmap") {
        throw new Error(
          `serveRedisPool "${this.#options.name}" refused a job of mode ${show(mode)}`,
        );
      }
      if (!Array.isArray(args)) throw new Error(`serveRedisPool "${this.#options.name}": bad job`);
      // A submitter sends no shared object (it refuses them): one in a job was written by hand,
      // and the local pool would rebuild it.
      reviveWith(args, ({ kind }) => {
        throw new Error(
          `serveRedisPool "${this.#options.name}" refused a job whose arguments hold a ` +
            `package object (${show(kind)}): shared objects cannot come through Redis`,
        );
      });
      const task = submitSpec(this.#options.pool, this.#check(fn), args, mode, job.timeout);
      this.#running.set(job.id, task);
      if (this.#cancelledEarly.delete(job.id)) task.cancel();
      value = await task;
    } catch (error) {
      status = THREW;
      value = packError(error);
    } finally {
      this.#running.delete(job.id);
      this.#cancelledEarly.delete(job.id);
    }
    try {
      return itemToBytes({ id: job.id, status, value });
    } catch (error) {
      return itemToBytes({ id: job.id, status: THREW, value: packError(error) });
    }
  }

  /** Refuses a task this worker does not trust; else the spec to run (its URL normalised). */
  #check(fn: FnSpec): FnSpec {
    if (typeof fn !== "object" || fn === null || typeof fn.name !== "string") {
      throw new Error(`serveRedisPool "${this.#options.name}" refused a job with no function`);
    }
    if ("source" in fn) {
      if (this.#options.allowInline && typeof fn.source === "string") {
        return { source: fn.source, name: fn.name };
      }
      throw new Error(
        `serveRedisPool "${this.#options.name}" refused inline task "${fn.name || "anonymous"}": ` +
          `this worker runs inline functions only with allowInline: true; submit tasks(url).name instead`,
      );
    }
    let url: string;
    try {
      if (typeof fn.module !== "string") throw new TypeError("not a string");
      url = new URL(fn.module).href;
    } catch {
      throw new Error(
        `serveRedisPool "${this.#options.name}" refused a task module that is not a URL: ${
          show(fn.module)
        }`,
      );
    }
    // An encoded slash or backslash is one to Deno once it reads a file: it must not hide a "..".
    if (/%(2f|5c)/i.test(url) || !this.#prefixes.some((prefix) => under(url, prefix))) {
      throw new Error(
        `serveRedisPool "${this.#options.name}" refused task module ${url}: it is not under ` +
          `the modules this worker may import (${this.#prefixes.join(", ") || "none"})`,
      );
    }
    return { module: url, name: fn.name };
  }
}

/**
 * Whether `url` is under `prefix`: a prefix that ends in "/" holds what starts with it; any
 * other holds itself and what lies below it ("file:///srv/work" holds "file:///srv/work/a.ts",
 * not "file:///srv/workshop/a.ts"), and for `jsr:` and `npm:` its versions ("jsr:@a/b@1/mod.ts").
 */
function under(url: string, prefix: string): boolean {
  if (!url.startsWith(prefix)) return false;
  if (url.length === prefix.length || prefix.endsWith("/")) return true;
  const next = url[prefix.length];
  return next === "/" || (next === "@" && /^(jsr|npm):/.test(prefix));
}
