/**
 * `map`, `starmap`, `imap` and `imapUnordered`, built on two operations of
 * the scheduler — submit a chunk, withdraw a chunk that has not started — as
 * CPython builds `Executor.map` on `submit`. A chunk is one job that applies
 * the function to each of its items in the worker.
 *
 * @module
 */

import { onSettled, type Task } from "../futures.ts";
import type { TaskFunction } from "../tasks.ts";
import { checkOptionNames, wholeNumber } from "./options.ts";
import { plainArrays } from "./protocol.ts";

/** Options of `map`, `starmap`, `imap` and `imapUnordered`. */
export interface MapOptions {
  /** Items per job. `map` picks one from the input's length; the iterators default to 1. */
  chunkSize?: number;
}

const MAP_OPTIONS = ["chunkSize"] as const;

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
  const chunks: Task<unknown[]>[] = [];
  for (let i = 0; i < all.length; i += chunkSize) {
    const chunk = all.slice(i, i + chunkSize);
    plainArrays.add(chunk);
    chunks.push(pool.submit(fn, chunk, mode, where));
  }
  // As Python's map: the error of the first failing item in input order, not in time.
  const results: Awaited<R>[][] = [];
  for (let i = 0; i < chunks.length; i++) {
    try {
      results.push(await chunks[i] as Awaited<R>[]);
    } catch (error) {
      // As concurrent.futures: chunks not started yet are cancelled, running ones finish.
      for (const later of chunks.slice(i + 1)) pool.withdraw(later, `${where} failed`);
      throw error;
    }
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

  async function* generate(): AsyncGenerator<Awaited<R>, void, undefined> {
    const source = Symbol.asyncIterator in items
      ? (items as AsyncIterable<T>)[Symbol.asyncIterator]()
      : (items as Iterable<T>)[Symbol.iterator]();
    const chunks: Task<unknown[]>[] = [];
    /** For `imapUnordered`: chunks that have settled, in the order they did. */
    const finished: Task<unknown[]>[] = [];
    let wake: (() => void) | undefined;
    let exhausted = false;
    const refill = async () => {
      while (!exhausted && chunks.length < inFlight) {
        const chunk: T[] = [];
        while (chunk.length < chunkSize) {
          const next = await source.next();
          if (next.done) {
            exhausted = true;
            break;
          }
          chunk.push(next.value);
        }
        if (chunk.length === 0) continue;
        plainArrays.add(chunk);
        const task = pool.submit(fn, chunk, "map", where);
        chunks.push(task);
        if (!ordered) {
          onSettled(task, () => {
            finished.push(task);
            wake?.();
          });
        }
      }
    };
    try {
      await refill();
      while (chunks.length > 0) {
        let chunk: Task<unknown[]>;
        if (ordered) {
          chunk = chunks.shift()!;
        } else {
          while (finished.length === 0) await new Promise<void>((resolve) => wake = resolve);
          chunk = finished.shift()!;
          chunks.splice(chunks.indexOf(chunk), 1);
        }
        const results = await chunk as Awaited<R>[];
        await refill();
        yield* results;
      }
    } finally {
      for (const chunk of chunks) pool.withdraw(chunk, "the loop reading its results ended");
      if (!exhausted) await source.return?.();
    }
  }
  return generate();
}
