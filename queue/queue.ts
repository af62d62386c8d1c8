/**
 * `Queue`: Python's `queue.Queue` and `multiprocessing.Queue` in one class,
 * over a ring buffer in shared memory (see `_ring.ts` for its layout and
 * algorithm).
 *
 * @module
 */

import { QueueClosedError } from "../errors.ts";
import {
  type ArgShape,
  describe,
  type DescribeContext,
  type Descriptor,
  registerReviver,
  remote,
  type RemoteSpec,
} from "../internal/codec.ts";
import {
  checkTimeout,
  runAsync,
  runSync,
  type WaitOptions,
  type WaitSteps,
} from "../internal/wait.ts";
import { checkOptionNames, show, wholeNumber } from "../internal/options.ts";
import { sharedState } from "../sync/_shared.ts";
import {
  adopting,
  adoption,
  checkFrame,
  deadlineIn,
  encodePayload,
  frameBytes,
  MAX_BYTES,
  NOTHING,
  Ring,
  type RingRefs,
  WAS_CLOSED,
  WROTE,
} from "./_ring.ts";

/** Options of {@linkcode Queue} and `JoinableQueue`. */
export interface QueueOptions {
  /**
   * The most items the queue holds; a `put` on a full queue waits for a
   * `get`. A whole number from 1 to 2^31 - 1; omit it (or pass `Infinity`)
   * for no bound.
   */
  maxSize?: number;
}

/** The ring of each queue, for `JoinableQueue` in this folder. */
let ringOf: (queue: Queue<any>) => Ring;

/** @internal The ring under `queue`. */
export function queueRing(queue: Queue<any>): Ring {
  return ringOf(queue);
}

function checkOptions(options: QueueOptions | undefined, name: string): number {
  if (options === undefined) return Infinity;
  const where = `Cannot create ${name}`;
  checkOptionNames(options, ["maxSize"], where);
  const maxSize = options.maxSize;
  if (maxSize === undefined || maxSize === Infinity) return Infinity;
  return wholeNumber(maxSize, "maxSize", 1, where, 0x7fff_ffff);
}

/** @internal `tryPut` on `ring`, with a priority (used by a PriorityQueue). */
export function tryPutInto(ring: Ring, item: unknown, priority: number): boolean {
  if (ring.closed) throw ring.closedForPut("tryPut()");
  const payload = encodePayload(item);
  const need = frameBytes(item, payload);
  checkFrame(need);
  const result = ring.write(item, payload, need, false, priority);
  if (result === WAS_CLOSED) throw ring.closedForPut("tryPut()");
  return result === WROTE;
}

/**
 * The start of every put (`method` names it in messages): checks the
 * options, encodes the item and writes it if there is room now; `undefined`
 * once written, else the steps that wait for room (`blocking` for `putSync`).
 */
function putNow(
  ring: Ring,
  item: unknown,
  options: WaitOptions | undefined,
  method: string,
  blocking: boolean,
): WaitSteps<void> | undefined {
  const timeout = waitTimeout(options, ring, method);
  const priority = priorityOf(ring, options, method);
  const deadline = deadlineIn(timeout);
  if (ring.closed) throw ring.closedForPut(method);
  const payload = encodePayload(item);
  const need = frameBytes(item, payload);
  checkFrame(need);
  const result = ring.write(item, payload, need, false, priority);
  if (result === WROTE) return undefined;
  if (result === WAS_CLOSED) throw ring.closedForPut(method);
  // A put's signal stays with it; putSync's is only checked before waiting.
  const signal = blocking ? undefined : options?.signal;
  return ring.putSteps(item, payload, need, deadline, timeout, signal, method, blocking, priority);
}

/** @internal A PriorityQueue put's `priority` (default 0); 0 for the other queues. */
export function priorityOf(ring: Ring, options: object | undefined, method: string): number {
  if (!ring.prioritized) return 0;
  const given = (options as { priority?: unknown } | undefined)?.priority;
  const priority = given === undefined ? 0 : given;
  if (typeof priority !== "number" || Number.isNaN(priority)) {
    throw new TypeError(
      `${ring.label}.${method}: 'priority' must be a number: current value is ${show(priority)}`,
    );
  }
  return priority;
}

/** Reads the options of a waiting call: the timeout, after checking the signal. */
function waitTimeout(options: WaitOptions | undefined, ring: Ring, method: string): number {
  if (options === undefined) return Infinity;
  const timeout = checkTimeout(options.timeout, `${ring.label}.${method}`);
  options.signal?.throwIfAborted();
  return timeout;
}

/**
 * A first-in, first-out queue shared by the main thread, threads and
 * processes (Python's `queue.Queue` and `multiprocessing.Queue`). Items are
 * copied in: numbers, strings, booleans, `null` and `undefined` in a compact
 * form of their own, everything else (Map, Set, Date, BigInt, typed arrays,
 * plain objects, errors…) through `node:v8` serialize, so what `get` returns
 * is a copy of what was put.
 *
 * Pass a queue to a `Thread` or a pool task (as an argument, or inside one)
 * and it arrives as a working queue on the same shared memory; so it does in
 * a `Process` that may use FFI (it maps this program's memory), and in any
 * other process it is a handle whose calls the parent performs (see the
 * README, "Processes"). Many producers and consumers may use it at once:
 * each item is received exactly once, in the order items were put. Waiting
 * consumers in this process and its threads are served first come, first
 * served; a child's waiting calls come after them. An item a consumer took is
 * gone, even if that consumer then dies, as in Python; a child killed in the
 * middle of a call leaves the queue whole (the parent finishes or undoes it).
 *
 * The items live as bytes in a ring in shared memory of 64 KiB that grows
 * as needed up to 64 MiB ({@linkcode Queue.MAX_BYTES});
 * once it is full at that size, `put` waits as on a full queue, and an item
 * that could never fit fails with a `RangeError`. The ring does not shrink.
 *
 * `put` and `get` return promises and work everywhere; `putSync` and
 * `getSync` block the calling thread (for threads: on the main thread they
 * would freeze the event loop); `tryPut` and `tryGet` never wait.
 *
 * @typeParam T The type of the items.
 *
 * @example Producer and consumer
 * ```ts
 * import assert from "node:assert/strict";
 * import { Queue } from "@parallel/core";
 *
 * const queue = new Queue<number>({ maxSize: 2 });
 * const consumer = (async () => {
 *   const seen: number[] = [];
 *   for await (const item of queue) seen.push(item);
 *   return seen;
 * })();
 * for (let i = 0; i < 5; i++) await queue.put(i); // waits while 2 items are queued
 * queue.close();
 * assert.deepEqual(await consumer, [0, 1, 2, 3, 4]);
 * ```
 *
 * @example With a thread
 * ```ts
 * import assert from "node:assert/strict";
 * import { Queue, Thread } from "@parallel/core";
 *
 * const queue = new Queue<string>();
 * const producer = (queue: Queue<string>) => {
 *   for (const word of ["to", "the", "thread", "and", "back"]) queue.putSync(word);
 *   queue.close();
 * };
 * const thread = new Thread({ target: producer, args: [queue] }).start();
 * const words: string[] = [];
 * for await (const word of queue) words.push(word);
 * await thread.join();
 * assert.deepEqual(words.join(" "), "to the thread and back");
 * ```
 */
export class Queue<T = unknown> implements AsyncIterable<T> {
  /** The most bytes a queue's ring grows to: 64 MiB (67,108,864). */
  static readonly MAX_BYTES: number = MAX_BYTES;

  readonly #ring: Ring;

  static {
    ringOf = (queue) => queue.#ring;
  }

  /**
   * Creates an empty, open queue.
   *
   * @param options `maxSize`: the most items it holds (no bound when omitted).
   * @throws {RangeError} When `maxSize` is not a whole number from 1 to 2^31 - 1.
   * @throws {TypeError} When `maxSize` is not a number, or an option is unknown.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Queue } from "@parallel/core";
   * const queue = new Queue<string>({ maxSize: 100 });
   * assert.equal(queue.size, 0);
   * assert.equal(queue.maxSize, 100);
   * ```
   */
  constructor(options?: QueueOptions) {
    this.#ring = adoption() ?? Ring.create(checkOptions(options, new.target.name));
  }

  /**
   * The most items the queue holds, `Infinity` when it has no bound.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Queue } from "@parallel/core";
   * assert.equal(new Queue().maxSize, Infinity);
   * ```
   */
  get maxSize(): number {
    return this.#ring.maxSize;
  }

  /**
   * How many items are in the queue now. Other threads may change it at any
   * moment, so it is a hint, as Python's `qsize()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Queue } from "@parallel/core";
   * const queue = new Queue<number>();
   * await queue.put(1);
   * assert.deepEqual(queue.size, 1);
   * ```
   */
  get size(): number {
    return this.#ring.size;
  }

  /**
   * Whether {@linkcode Queue.close} was called. Items may still be left to get.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Queue } from "@parallel/core";
   * const queue = new Queue();
   * queue.close();
   * assert.deepEqual(queue.closed, true);
   * ```
   */
  get closed(): boolean {
    return this.#ring.closed;
  }

  /**
   * Adds an item at the end, waiting without blocking the thread while the
   * queue is full (`maxSize` items, or 64 MiB of bytes).
   *
   * @param item The item; it is copied in.
   * @param options `timeout` in milliseconds, and a `signal` to stop waiting.
   * @returns A promise that resolves once the item is in the queue.
   * @throws {QueueClosedError} When the queue is closed, or closes while the
   *   put waits.
   * @throws {TimeoutError} When `timeout` passes first.
   * @throws {RangeError} When the item is larger than the ring can ever hold
   *   (64 MiB), or `timeout` is negative or not a number.
   * @throws {SerializationError} When the item cannot be copied (a function,
   *   a symbol, a class instance with private state…).
   * @throws When `signal` is aborted: the signal's `reason`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Queue } from "@parallel/core";
   * const queue = new Queue<string>({ maxSize: 1 });
   * await queue.put("first");
   * try {
   *   await queue.put("second", { timeout: 10 });
   * } catch (error) {
   *   assert.deepEqual((error as Error).name, "TimeoutError");
   * }
   * ```
   */
  async put(item: T, options?: WaitOptions): Promise<void> {
    const steps = putNow(this.#ring, item, options, "put()", false);
    if (steps !== undefined) await runAsync(steps);
  }

  /**
   * Adds an item at the end, blocking the calling thread while the queue is
   * full. For threads: on the main thread it freezes the event loop.
   *
   * @param item The item; it is copied in.
   * @param options `timeout` in milliseconds; a `signal` is only checked
   *   before waiting, since a blocked thread cannot see it fire.
   * @throws {QueueClosedError} When the queue is closed, or closes while the
   *   put waits.
   * @throws {TimeoutError} When `timeout` passes first.
   * @throws {RangeError} When the item is larger than the ring can ever hold
   *   (64 MiB), or `timeout` is negative or not a number.
   * @throws {SerializationError} When the item cannot be copied.
   * @throws When `signal` is already aborted: the signal's `reason`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Queue } from "@parallel/core";
   * const queue = new Queue<number>();
   * queue.putSync(42);
   * assert.deepEqual(queue.getSync(), 42);
   * ```
   */
  putSync(item: T, options?: WaitOptions): void {
    const steps = putNow(this.#ring, item, options, "putSync()", true);
    if (steps !== undefined) runSync(steps);
  }

  /**
   * Adds an item at the end if there is room now, without waiting.
   *
   * @param item The item; it is copied in.
   * @returns `true` when the item was added, `false` when the queue is full.
   * @throws {QueueClosedError} When the queue is closed: no put can succeed.
   * @throws {RangeError} When the item is larger than the ring can ever hold.
   * @throws {SerializationError} When the item cannot be copied.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Queue } from "@parallel/core";
   * const queue = new Queue<string>({ maxSize: 1 });
   * assert.equal(queue.tryPut("a"), true);
   * assert.equal(queue.tryPut("b"), false);
   * ```
   */
  tryPut(item: T): boolean {
    return tryPutInto(this.#ring, item, 0);
  }

  /**
   * Removes and returns the oldest item, waiting without blocking the thread
   * while the queue is empty.
   *
   * @param options `timeout` in milliseconds, and a `signal` to stop waiting.
   * @returns A promise of the item.
   * @throws {QueueClosedError} When the queue is closed and empty, or closes
   *   while the get waits.
   * @throws {TimeoutError} When `timeout` passes first.
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is aborted: the signal's `reason`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Queue } from "@parallel/core";
   * const queue = new Queue<Map<string, number>>();
   * await queue.put(new Map([["answer", 42]]));
   * const map = await queue.get({ timeout: 1000 });
   * assert.deepEqual(map.get("answer"), 42);
   * ```
   */
  async get(options?: WaitOptions): Promise<T> {
    const ring = this.#ring;
    const timeout = waitTimeout(options, ring, "get()");
    const item = ring.tryTake("get()");
    if (item !== NOTHING) return item as T;
    return await runAsync(
      ring.getSteps(deadlineIn(timeout), timeout, options?.signal, "get()", false),
    ) as T;
  }

  /**
   * Removes and returns the oldest item, blocking the calling thread while
   * the queue is empty. For threads: on the main thread it freezes the event
   * loop.
   *
   * @param options `timeout` in milliseconds; a `signal` is only checked
   *   before waiting.
   * @returns The item.
   * @throws {QueueClosedError} When the queue is closed and empty, or closes
   *   while the get waits.
   * @throws {TimeoutError} When `timeout` passes first.
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is already aborted: the signal's `reason`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Queue } from "@parallel/core";
   * const queue = new Queue<string>();
   * queue.putSync("hello");
   * assert.deepEqual(queue.getSync({ timeout: 1000 }), "hello");
   * ```
   */
  getSync(options?: WaitOptions): T {
    const ring = this.#ring;
    const timeout = waitTimeout(options, ring, "getSync()");
    const item = ring.tryTake("getSync()");
    if (item !== NOTHING) return item as T;
    return runSync(ring.getSteps(deadlineIn(timeout), timeout, undefined, "getSync()", true)) as T;
  }

  /**
   * Removes and returns the oldest item if there is one now, without
   * waiting. The item comes wrapped, so an `undefined` item is told apart
   * from an empty queue.
   *
   * @returns `{ value }` with the item, or `undefined` when the queue is empty.
   * @throws {QueueClosedError} When the queue is closed and empty: no get can
   *   succeed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Queue } from "@parallel/core";
   * const queue = new Queue<undefined>();
   * assert.deepEqual(queue.tryGet(), undefined);
   * await queue.put(undefined);
   * assert.deepEqual(queue.tryGet(), { value: undefined });
   * ```
   */
  tryGet(): { value: T } | undefined {
    const item = this.#ring.tryTake("tryGet()");
    return item === NOTHING ? undefined : { value: item as T };
  }

  /**
   * Closes the queue: later puts fail with `QueueClosedError`, and so do
   * puts waiting for room; gets go on until the queue is empty, then fail
   * the same way, and iteration ends. Calling it again does nothing.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Queue } from "@parallel/core";
   * const queue = new Queue<number>();
   * await queue.put(1);
   * queue.close();
   * assert.deepEqual(await queue.get(), 1);
   * await assert.rejects(queue.get(), { name: "QueueClosedError" });
   * ```
   */
  close(): void {
    this.#ring.close();
  }

  /**
   * Iterates over the items as they arrive (each `next()` is a `get()`),
   * ending once the queue is closed and empty.
   *
   * @returns An async iterator of the items.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Queue } from "@parallel/core";
   * const queue = new Queue<string>();
   * await queue.put("a");
   * await queue.put("b");
   * queue.close();
   * const items: string[] = [];
   * for await (const item of queue) items.push(item);
   * assert.deepEqual(items, ["a", "b"]);
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for (;;) {
      let item: T;
      try {
        item = await this.get();
      } catch (error) {
        if (error instanceof QueueClosedError) return;
        throw error;
      }
      yield item;
    }
  }

  /**
   * Describes this queue for a thread: the same shared buffers.
   *
   * @ignore
   */
  [describe](context: DescribeContext): Descriptor {
    return describeRing(this.#ring, "Queue", import.meta.url, context);
  }

  /**
   * How a child process uses it through the broker.
   *
   * @ignore
   */
  get [remote](): RemoteSpec {
    return queueRemoteSpec(this.#ring);
  }
}

/**
 * @internal The descriptor of a queue's ring: its buffers, for a thread or a
 * child process that maps this program's memory (`context.mapped`).
 *
 * @throws {SerializationError} For any other process: it uses the queue through the broker.
 */
export function describeRing(
  ring: Ring,
  kind: string,
  module: string,
  context: DescribeContext,
): Descriptor {
  const recover = (pid: number) => ring.recoverFrom(pid);
  const state = ring.refs((buffer) =>
    sharedState(context, buffer, kind, buffer === ring.header.buffer ? recover : undefined)
  );
  return { kind, module, state };
}

/**
 * @internal What the broker needs to know about a queue. A child that maps
 * this program's memory uses the ring directly (`direct`).
 */
export function queueRemoteSpec(ring: Ring, joinable = false): RemoteSpec {
  const immediate: Record<string, string> = {
    tryGet: "await queue.get({ timeout: 0 })",
    tryPut: "await queue.put(item, { timeout: 0 })",
    getSync: "await queue.get(options)",
    putSync: "await queue.put(item, options)",
    size: "a count of your own (or a JoinableQueue and await queue.join())",
    closed: "the QueueClosedError of await queue.put(item) or await queue.get()",
  };
  if (joinable) {
    immediate.joinSync = "await queue.join(options)";
    immediate.unfinished = "await queue.join() to wait until it is 0";
  }
  const calls: Record<string, ArgShape[]> = {
    put: ["value", "options"],
    get: ["options"],
    close: [],
  };
  if (joinable) Object.assign(calls, { taskDone: [], join: ["options"] });
  return {
    calls,
    immediate,
    oneWay: joinable ? ["close", "taskDone"] : ["close"],
    constants: { maxSize: ring.maxSize },
    direct: true,
  };
}

registerReviver("Queue", (refs: RingRefs) => adopting(Ring.revive(refs), () => new Queue()));
