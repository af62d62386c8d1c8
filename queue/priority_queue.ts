/**
 * `PriorityQueue`: Python's `queue.PriorityQueue`, a `Queue` whose gets take
 * the item of the lowest priority.
 *
 * @module
 */

import {
  describe,
  type DescribeContext,
  type Descriptor,
  registerReviver,
} from "../internal/codec.ts";
import type { WaitOptions } from "../internal/wait.ts";
import { adopting, PRIORITY, Ring, type RingRefs } from "./_ring.ts";
import {
  describeRing,
  priorityOf,
  Queue,
  type QueueOptions,
  queueRing,
  tryPutInto,
} from "./queue.ts";

/** Options of a {@linkcode PriorityQueue}'s puts. */
export interface PriorityOptions {
  /** Lower comes out first; equal priorities come out in the order put. Default: 0. */
  priority?: number;
}

/**
 * A queue that hands out the item of the lowest priority first, and items
 * of equal priority in the order they were put (Python's
 * `queue.PriorityQueue`, without putting tuples): `put(item, { priority })`.
 * Everything else is as in {@linkcode Queue}: shared by the main thread,
 * threads and processes, items copied in, each handed out exactly once,
 * `maxSize`, `close()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PriorityQueue } from "@parallel/core";
 * const jobs = new PriorityQueue<string>();
 * await jobs.put("later", { priority: 5 });
 * await jobs.put("urgent", { priority: -1 });
 * await jobs.put("normal"); // priority 0
 * await jobs.put("normal too");
 * const order: string[] = [];
 * while (jobs.size > 0) order.push(await jobs.get());
 * assert.deepEqual(order, ["urgent", "normal", "normal too", "later"]);
 * ```
 */
export class PriorityQueue<T = unknown> extends Queue<T> {
  /**
   * Creates an empty, open queue.
   *
   * @param options `maxSize`: the most items it holds (no bound when omitted).
   * @throws {RangeError} When `maxSize` is not a whole number from 1 to 2^31 - 1.
   * @throws {TypeError} When `maxSize` is not a number, or an option is unknown.
   */
  constructor(options?: QueueOptions) {
    super(options);
    queueRing(this).makeOrdered(PRIORITY, "PriorityQueue");
  }

  /**
   * Adds an item with a priority, waiting while the queue is full.
   *
   * @param item The item; it is copied in.
   * @param options `priority` (default 0), `timeout` in milliseconds, and a `signal`.
   * @throws {TypeError} When `priority` is not a number (NaN included).
   * @throws {QueueClosedError} When the queue is closed, or closes while the put waits.
   * @throws {TimeoutError} When `timeout` passes first.
   */
  override put(item: T, options?: WaitOptions & PriorityOptions): Promise<void> {
    return super.put(item, options);
  }

  /**
   * Adds an item with a priority, blocking the calling thread while the
   * queue is full.
   *
   * @param item The item; it is copied in.
   * @param options `priority` (default 0), `timeout` in milliseconds.
   * @throws {TypeError} When `priority` is not a number (NaN included).
   * @throws {QueueClosedError} When the queue is closed, or closes while the put waits.
   * @throws {TimeoutError} When `timeout` passes first.
   */
  override putSync(item: T, options?: WaitOptions & PriorityOptions): void {
    super.putSync(item, options);
  }

  /**
   * Adds an item with a priority if there is room now, without waiting.
   *
   * @param item The item; it is copied in.
   * @param options `priority` (default 0).
   * @returns `true` when the item was added, `false` when the queue is full.
   * @throws {TypeError} When `priority` is not a number (NaN included).
   * @throws {QueueClosedError} When the queue is closed.
   */
  override tryPut(item: T, options?: PriorityOptions): boolean {
    const ring = queueRing(this);
    return tryPutInto(ring, item, priorityOf(ring, options, "tryPut()"));
  }

  /**
   * Describes this queue for a thread: the same shared buffers.
   *
   * @ignore
   */
  override [describe](context: DescribeContext): Descriptor {
    return describeRing(queueRing(this), "PriorityQueue", import.meta.url, context);
  }
}

registerReviver(
  "PriorityQueue",
  (refs: RingRefs) => adopting(Ring.revive(refs), () => new PriorityQueue()),
);
