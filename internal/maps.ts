/**
 * `map`, `starmap`, `imap` and `imapUnordered`, built on two operations of
 * the scheduler — submit a chunk, withdraw a chunk that has not started — as
 * CPython builds `Executor.map` on `submit`. A chunk is one job that applies
 * the function to each of its items in the worker.
 *
 * @module
 */

import { onSettled, type Task } from "../futures.ts";
import { TimeoutError } from "../errors.ts";
import type { TaskFunction } from "../tasks.ts";
import { checkMilliseconds, checkOptionNames, show, wholeNumber } from "./options.ts";
import { plainArrays } from "./protocol.ts";

/** Options of `map`, `starmap`, `imap` and `imapUnordered`. */
export interface MapOptions {
  /** Items per job. `map` picks one from the input's length; the iterators default to 1. */
  chunkSize?: number;
  /**
   * Milliseconds for the whole call, counted from the call (Python's
   * `Executor.map(timeout=)`): then it rejects with `TimeoutError` and its
   * unfinished tasks are cancelled. Default: no limit.
   */
  timeout?: number;
  /** Aborting it rejects the call with the signal's reason and cancels its unfinished tasks. */
  signal?: AbortSignal;
  /**
   * Called as results arrive with how many items are done, and the input's
   * length when it is known (an array, or anything with a `length` or
   * `size`). A callback that throws is reported on stderr.
   */
  onProgress?: (done: number, total?: number) => void;
}

const MAP_OPTIONS = ["chunkSize", "timeout", "signal", "onProgress"] as const;

/**
 * Checks a call's `timeout`, `signal` and `onProgress`, and that the signal
 * has not fired; returns the timeout.
 */
function checkLimits(options: MapOptions, where: string): number {
  const timeout = checkMilliseconds(options.timeout ?? Infinity, "timeout", where);
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(
      `${where}: 'signal' must be an AbortSignal: current value is ${show(signal)}`,
    );
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== "function") {
    throw new TypeError(
      `${where}: 'onProgress' must be a function: current value is ${show(options.onProgress)}`,
    );
  }
  signal?.throwIfAborted();
  return timeout;
}

/**
 * A call's checked `timeout` and `signal`, armed: `stopped` rejects when
 * either ends the call; `end()` lets both go.
 */
class CallLimits {
  readonly stopped: Promise<never>;
  readonly #end: () => void;
  /** Whether the time ran out or the signal fired. */
  fired = false;

  /** `since`: when the call was made (the timeout counts from it). */
  constructor(timeout: number, signal: AbortSignal | undefined, where: string, since: number) {
    signal?.throwIfAborted();
    let stop!: (error: unknown) => void;
    this.stopped = new Promise<never>((_, reject) => {
      stop = (error) => {
        this.fired = true;
        reject(error);
      };
    });
    this.stopped.catch(() => {});
    const timer = timeout === Infinity ? undefined : setTimeout(
      () => stop(new TimeoutError(`${where}: not finished after ${timeout} ms`)),
      Math.max(0, timeout - (performance.now() - since)),
    );
    const onAbort = () => stop(signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#end = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
  }

  /** `promise`, unless the call is stopped first. */
  race<T>(promise: PromiseLike<T>): Promise<T> {
    return Promise.race([promise, this.stopped]);
  }

  end(): void {
    this.#end();
  }
}

/** Counts finished items for `onProgress`; `total` when the input's length is known. */
function progress(
  options: MapOptions,
  items: unknown,
): ((chunk: Task<unknown[]>, size: number) => void) | undefined {
  const onProgress = options.onProgress;
  if (onProgress === undefined) return undefined;
  const known = (items as { length?: unknown; size?: unknown } | null) ?? {};
  const length = Array.isArray(items) ? items.length : known.length ?? known.size;
  const total = typeof length === "number" ? length : undefined;
  let done = 0;
  return (chunk, size) => {
    chunk.then(() => {
      done += size;
      try {
        onProgress(done, total);
      } catch (error) {
        console.error("An onProgress callback failed:", error);
      }
    }, () => {});
  };
}

/** What the maps need from a pool. */
export interface Chunks {
  /** The pool's name, for messages (`ThreadPool-1`). */
  readonly label: string;
  readonly maxWorkers: number;
  /** Throws, naming `fn` with `where`, when it is not a task function. */
  checkFn(fn: unknown, where: string): void;
  /**
   * Queues one chunk: `fn` applied to each item (`"map"`), or to each item's
   * arguments (`"starmap"`). Not bounded by `maxQueue`: the maps bound
   * themselves.
   */
  submit(
    fn: TaskFunction<any, unknown>,
    items: unknown[],
    mode: "map" | "starmap",
    where: string,
  ): Task<unknown[]>;
  /** Cancels a chunk if it has not started; `false` if it had (it then runs to its end). */
  withdraw(chunk: Task<unknown>, why: string): boolean;
}

/** `map` and `starmap`: every result, in input order. */
export async function mapAll<R>(
  pool: Chunks,
  fn: TaskFunction<any, R>,
  items: Iterable<unknown>,
  mode: "map" | "starmap",
  options: MapOptions,
): Promise<Awaited<R>[]> {
  const where = `${pool.label}.${mode}`;
  checkOptionNames(options, MAP_OPTIONS, where);
  pool.checkFn(fn, where);
  const all = Array.isArray(items) ? items : [...items];
  const chunkSize = options.chunkSize === undefined
    ? Math.max(1, Math.ceil(all.length / (pool.maxWorkers * 4)))
    : wholeNumber(options.chunkSize, "chunkSize", 1, where);
  const timeout = checkLimits(options, where);
  const limits = new CallLimits(timeout, options.signal, where, performance.now());
  const counted = progress(options, all);
  const chunks: Task<unknown[]>[] = [];
  for (let i = 0; i < all.length; i += chunkSize) {
    const chunk = all.slice(i, i + chunkSize);
    plainArrays.add(chunk);
    const task = pool.submit(fn, chunk, mode, where);
    counted?.(task, chunk.length);
    chunks.push(task);
  }
  // As Python's map: the error of the first failing item in input order, not in time.
  const results: Awaited<R>[][] = [];
  try {
    for (let i = 0; i < chunks.length; i++) {
      try {
        results.push(await limits.race(chunks[i]) as Awaited<R>[]);
      } catch (error) {
        if (limits.fired) {
          // The time ran out or the signal fired: cancel everything unfinished, running or not.
          for (const chunk of chunks.slice(i)) chunk.cancel();
        } else {
          // As concurrent.futures: chunks not started yet are cancelled, running ones finish.
          for (const later of chunks.slice(i + 1)) pool.withdraw(later, `${where} failed`);
        }
        throw error;
      }
    }
  } finally {
    limits.end();
  }
  // One level: the chunks' arrays, not an item that is itself an array.
  return results.flat() as Awaited<R>[];
}

/**
 * `imap` (`ordered`) and `imapUnordered`: pulls the input lazily, keeping
 * about two chunks per worker in flight; leaving the loop stops pulling and
 * withdraws the chunks that have not started.
 */
export function lazyMap<T, R>(
  pool: Chunks,
  fn: TaskFunction<[T], R>,
  items: Iterable<T> | AsyncIterable<T>,
  options: MapOptions,
  ordered: boolean,
): AsyncIterableIterator<Awaited<R>> {
  const where = `${pool.label}.${ordered ? "imap" : "imapUnordered"}`;
  checkOptionNames(options, MAP_OPTIONS, where);
  const chunkSize = wholeNumber(options.chunkSize ?? 1, "chunkSize", 1, where);
  const inFlight = pool.maxWorkers * 2;
  pool.checkFn(fn, where);
  // Checked now; its timer and abort listener start with the iteration (an iterator never
  // read must leave nothing behind), the timeout still counted from now.
  const calledAt = performance.now();
  const timeout = checkLimits(options, where);
  const counted = progress(options, items);

  async function* generate(): AsyncGenerator<Awaited<R>, void, undefined> {
    const source = Symbol.asyncIterator in items
      ? (items as AsyncIterable<T>)[Symbol.asyncIterator]()
      : (items as Iterable<T>)[Symbol.iterator]();
    const chunks: Task<unknown[]>[] = [];
    /** For `imapUnordered`: chunks that have settled, in the order they did. */
    const finished: Task<unknown[]>[] = [];
    let wake: (() => void) | undefined;
    let exhausted = false;
    /** Set when the loop has ended: a refill still awaiting its input submits nothing more. */
    let closed = false;
    const refill = async () => {
      while (!closed && !exhausted && chunks.length < inFlight) {
        const chunk: T[] = [];
        while (chunk.length < chunkSize) {
          const next = await source.next();
          if (next.done) {
            exhausted = true;
            break;
          }
          chunk.push(next.value);
        }
        if (chunk.length === 0 || closed) continue;
        plainArrays.add(chunk);
        const task = pool.submit(fn, chunk, "map", where);
        counted?.(task, chunk.length);
        chunks.push(task);
        if (!ordered) {
          onSettled(task, () => {
            finished.push(task);
            wake?.();
          });
        }
      }
    };
    const limits = new CallLimits(timeout, options.signal, where, calledAt);
    try {
      await limits.race(refill());
      while (chunks.length > 0) {
        let chunk: Task<unknown[]>;
        if (ordered) {
          chunk = chunks.shift()!;
        } else {
          while (finished.length === 0) {
            await limits.race(new Promise<void>((resolve) => wake = resolve));
          }
          chunk = finished.shift()!;
          chunks.splice(chunks.indexOf(chunk), 1);
        }
        let results: Awaited<R>[];
        try {
          results = await limits.race(chunk) as Awaited<R>[];
        } catch (error) {
          if (limits.fired) chunk.cancel();
          throw error;
        }
        await limits.race(refill());
        yield* results;
      }
    } finally {
      closed = true;
      limits.end();
      for (const chunk of chunks) {
        // The time ran out or the signal fired: running chunks are cancelled too.
        if (limits.fired) chunk.cancel();
        else pool.withdraw(chunk, "the loop reading its results ended");
      }
      if (!exhausted) await source.return?.();
    }
  }
  return generate();
}
