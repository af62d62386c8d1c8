/**
 * `JoinableQueue`: a `Queue` that counts unfinished work, as Python's
 * `queue.Queue.task_done` / `join` and `multiprocessing.JoinableQueue`.
 *
 * @module
 */

import {
  describe,
  type DescribeContext,
  type Descriptor,
  registerReviver,
  remote,
  type RemoteSpec,
} from "../internal/codec.ts";
import { checkTimeout, runAsync, runSync, type WaitOptions } from "../internal/wait.ts";
import { adopting, Ring, type RingRefs } from "./_ring.ts";
import { describeRing, Queue, type QueueOptions, queueRemoteSpec, queueRing } from "./queue.ts";

/**
 * A {@linkcode Queue} that also counts unfinished tasks: every `put` adds
 * one, every `taskDone()` takes one away, and `join()` waits until none is
 * left, i.e. every item put has been got and processed. Shared with threads
 * and processes like a `Queue`.
 *
 * @typeParam T The type of the items.
 *
 * @example Wait until the workers have processed everything
 * ```ts
 * import assert from "node:assert/strict";
 * import { JoinableQueue } from "@parallel/core";
 *
 * const queue = new JoinableQueue<number>();
 * let total = 0;
 * const worker = (async () => {
 *   for await (const n of queue) {
 *     total += n;
 *     queue.taskDone();
 *   }
 * })();
 * for (const n of [1, 2, 3]) await queue.put(n);
 * await queue.join({ timeout: 1000 });
 * assert.deepEqual(total, 6);
 * queue.close();
 * await worker;
 * ```
 */
export class JoinableQueue<T = unknown> extends Queue<T> {
  readonly #ring: Ring = queueRing(this);

  /**
   * Creates an empty, open queue with no unfinished tasks.
   *
   * @param options `maxSize`: the most items it holds (no bound when omitted).
   * @throws {RangeError} When `maxSize` is not a whole number from 1 to 2^31 - 1.
   * @throws {TypeError} When `maxSize` is not a number, or an option is unknown.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JoinableQueue } from "@parallel/core";
   * const queue = new JoinableQueue<string>({ maxSize: 10 });
   * assert.deepEqual(queue.unfinished, 0);
   * ```
   */
  constructor(options?: QueueOptions) {
    super(options);
    this.#ring.makeJoinable();
  }

  /**
   * How many items were put and not yet marked done with `taskDone()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JoinableQueue } from "@parallel/core";
   * const queue = new JoinableQueue<number>();
   * await queue.put(1);
   * assert.deepEqual(queue.unfinished, 1);
   * ```
   */
  get unfinished(): number {
    return this.#ring.unfinished;
  }

  /**
   * Marks one item as processed. Call it once for each item got, when done
   * with it.
   *
   * @throws {RangeError} When it is called more times than items were put.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JoinableQueue } from "@parallel/core";
   * const queue = new JoinableQueue<string>();
   * await queue.put("job");
   * await queue.get();
   * queue.taskDone();
   * assert.deepEqual(queue.unfinished, 0);
   * ```
   */
  taskDone(): void {
    this.#ring.taskDone();
  }

  /**
   * Waits, without blocking the thread, until every item put has been marked
   * done with `taskDone()`. Resolves at once when none is unfinished.
   *
   * @param options `timeout` in milliseconds, and a `signal` to stop waiting.
   * @returns A promise that resolves once no task is unfinished.
   * @throws {TimeoutError} When `timeout` passes first.
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is aborted: the signal's `reason`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JoinableQueue } from "@parallel/core";
   * const queue = new JoinableQueue<number>();
   * await queue.put(1);
   * setTimeout(async () => {
   *   await queue.get();
   *   queue.taskDone();
   * }, 10);
   * await queue.join({ timeout: 1000 });
   * assert.deepEqual(queue.unfinished, 0);
   * ```
   */
  async join(options?: WaitOptions): Promise<void> {
    const ring = this.#ring;
    const timeout = checkTimeout(options?.timeout, "JoinableQueue.join()");
    options?.signal?.throwIfAborted();
    if (ring.unfinished === 0) return;
    if (!await runAsync(ring.joinSteps(timeout, options?.signal))) {
      throw ring.timedOut("join()", timeout);
    }
  }

  /**
   * Blocks the calling thread until every item put has been marked done.
   * For threads: on the main thread it freezes the event loop.
   *
   * @param options `timeout` in milliseconds; a `signal` is only checked
   *   before waiting.
   * @throws {TimeoutError} When `timeout` passes first.
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is already aborted: the signal's `reason`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JoinableQueue } from "@parallel/core";
   * const queue = new JoinableQueue<number>();
   * queue.putSync(1);
   * queue.getSync();
   * queue.taskDone();
   * queue.joinSync({ timeout: 1000 }); // returns at once: nothing is unfinished
   * assert.deepEqual(queue.unfinished, 0);
   * ```
   */
  joinSync(options?: WaitOptions): void {
    const ring = this.#ring;
    const timeout = checkTimeout(options?.timeout, "JoinableQueue.joinSync()");
    options?.signal?.throwIfAborted();
    if (ring.unfinished === 0) return;
    if (!runSync(ring.joinSteps(timeout, undefined))) throw ring.timedOut("joinSync()", timeout);
  }

  /**
   * Describes this queue for a thread: the same shared buffers.
   *
   * @ignore
   */
  override [describe](context: DescribeContext): Descriptor {
    return describeRing(this.#ring, "JoinableQueue", import.meta.url, context);
  }

  /**
   * How a child process uses it through the broker.
   *
   * @ignore
   */
  override get [remote](): RemoteSpec {
    return queueRemoteSpec(this.#ring, true);
  }
}

registerReviver(
  "JoinableQueue",
  (refs: RingRefs) => adopting(Ring.revive(refs), () => new JoinableQueue()),
);
