/**
 * `LifoQueue`: Python's `queue.LifoQueue`, a `Queue` whose gets take the
 * newest item.
 *
 * @module
 */

import {
  describe,
  type DescribeContext,
  type Descriptor,
  registerReviver,
} from "../internal/codec.ts";
import { adopting, LIFO, Ring, type RingRefs } from "./_ring.ts";
import { describeRing, Queue, type QueueOptions, queueRing } from "./queue.ts";

/**
 * A last-in, first-out queue (Python's `queue.LifoQueue`): `get`, `getSync`,
 * `tryGet` and `for await` take the newest item. Everything else is as in
 * {@linkcode Queue}: shared by the main thread, threads and processes, items
 * copied in, each handed out exactly once, `maxSize`, `close()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LifoQueue } from "@parallel/core";
 * const stack = new LifoQueue<string>();
 * for (const item of ["a", "b", "c"]) await stack.put(item);
 * assert.equal(await stack.get(), "c");
 * assert.equal(stack.getSync(), "b");
 * assert.deepEqual(stack.tryGet(), { value: "a" });
 * ```
 */
export class LifoQueue<T = unknown> extends Queue<T> {
  /**
   * Creates an empty, open queue.
   *
   * @param options `maxSize`: the most items it holds (no bound when omitted).
   * @throws {RangeError} When `maxSize` is not a whole number from 1 to 2^31 - 1.
   * @throws {TypeError} When `maxSize` is not a number, or an option is unknown.
   */
  constructor(options?: QueueOptions) {
    super(options);
    queueRing(this).makeOrdered(LIFO, "LifoQueue");
  }

  /**
   * Describes this queue for a thread: the same shared buffers.
   *
   * @ignore
   */
  override [describe](context: DescribeContext): Descriptor {
    return describeRing(queueRing(this), "LifoQueue", import.meta.url, context);
  }
}

registerReviver(
  "LifoQueue",
  (refs: RingRefs) => adopting(Ring.revive(refs), () => new LifoQueue()),
);
