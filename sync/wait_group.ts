/**
 * `WaitGroup`: Go's `sync.WaitGroup` over one shared word.
 *
 * ```text
 *   Int32Array over a SharedArrayBuffer of 1 word
 *   ┌───────────────────────────────┐
 *   │ 0 COUNTER  work not yet done  │
 *   └───────────────────────────────┘
 * ```
 *
 * `add(n)` and `done()` change COUNTER with `compareExchange`, refusing any
 * change that would take it below zero (Go panics with "negative WaitGroup
 * counter"; here the call throws and the counter is unchanged). The change
 * that brings it to zero wakes every waiter. A waiter reads COUNTER and, while
 * it is not zero, sleeps on COUNTER with the value it read, so a change
 * between the read and the sleep is never missed. Waiters do not compete for
 * anything: reaching zero releases all of them.
 *
 * @module
 */

import { show } from "../internal/options.ts";
import {
  describe,
  type DescribeContext,
  type Descriptor,
  registerReviver,
  remote,
  type RemoteSpec,
} from "../internal/codec.ts";
import {
  checkTimeout,
  Deadline,
  notify,
  runAsync,
  runSync,
  type WaitOptions,
  type WaitSteps,
} from "../internal/wait.ts";
import type { SharedRef } from "../internal/memory.ts";
import { abortReason, adopting, adoption, MAX_COUNT, sharedState, sharedWords } from "./_shared.ts";

const COUNTER = 0;

/**
 * A counter of outstanding work shared by every thread it is passed to (Go's
 * `sync.WaitGroup`): `add(n)` before starting work, `done()` when a piece
 * ends, `wait()` until the counter is back to zero.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WaitGroup } from "@parallel/core";
 *
 * const group = new WaitGroup();
 * group.add(2);
 * setTimeout(() => group.done(), 5);
 * setTimeout(() => group.done(), 10);
 * assert.deepEqual(await group.wait({ timeout: 1000 }), true);
 * ```
 */
export class WaitGroup {
  readonly #words: Int32Array;

  /**
   * Creates a wait group whose counter is zero.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { WaitGroup } from "@parallel/core";
   * const group = new WaitGroup();
   * assert.deepEqual(group.count, 0);
   * ```
   */
  constructor() {
    this.#words = new Int32Array(adoption() ?? sharedWords(1).buffer);
  }

  /** The counter now: work added and not yet done. */
  get count(): number {
    return Atomics.load(this.#words, COUNTER);
  }

  /**
   * Adds `delta` (which may be negative) to the counter, waking every waiter
   * when it reaches zero.
   *
   * @param delta A whole number; default 1.
   * @throws {RangeError} When `delta` is not a whole number, or the counter
   *   would go below zero or above 2147483647; the counter is unchanged.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { WaitGroup } from "@parallel/core";
   * const group = new WaitGroup();
   * group.add(3);
   * assert.deepEqual(group.count, 3);
   * ```
   */
  add(delta?: number): void {
    delta ??= 1;
    if (!Number.isInteger(delta)) {
      throw new RangeError(
        `Cannot add to WaitGroup: 'delta' must be a whole number: current value is ${show(delta)}`,
      );
    }
    this.#change(delta, "add");
  }

  /**
   * Marks one piece of work done: `add(-1)`.
   *
   * @throws {RangeError} When the counter is already zero (more `done()` than
   *   `add()`); it stays zero.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { WaitGroup } from "@parallel/core";
   * const group = new WaitGroup();
   * group.add();
   * group.done();
   * assert.deepEqual(group.count, 0);
   * ```
   */
  done(): void {
    this.#change(-1, "done");
  }

  /**
   * Waits without blocking the thread until the counter is zero.
   *
   * @param options `timeout` in milliseconds, and a `signal` to stop waiting.
   * @returns `true` when the counter reached zero, `false` when `timeout`
   *   passed first (as `Event.wait`).
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is aborted: the signal's `reason` (by default a
   *   `DOMException` named `"AbortError"`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { WaitGroup } from "@parallel/core";
   * const group = new WaitGroup();
   * assert.deepEqual(await group.wait(), true);
   * ```
   */
  async wait(options?: WaitOptions): Promise<boolean> {
    const timeout = checkTimeout(options?.timeout, "Cannot wait on WaitGroup");
    options?.signal?.throwIfAborted();
    return await runAsync(this.#steps(new Deadline(timeout), options?.signal));
  }

  /**
   * Blocks the calling thread until the counter is zero. Meant for threads:
   * on the main thread it freezes the event loop while it waits.
   *
   * @param options `timeout` in milliseconds; a `signal` is only checked
   *   before waiting, since a blocked thread cannot see it fire.
   * @returns `true` when the counter reached zero, `false` when `timeout`
   *   passed first.
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is already aborted: the signal's `reason`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { WaitGroup } from "@parallel/core";
   * const group = new WaitGroup();
   * group.add();
   * assert.deepEqual(group.waitSync({ timeout: 5 }), false);
   * ```
   */
  waitSync(options?: WaitOptions): boolean {
    const timeout = checkTimeout(options?.timeout, "Cannot wait on WaitGroup");
    options?.signal?.throwIfAborted();
    return runSync(this.#steps(new Deadline(timeout)));
  }

  /**
   * How a child process uses it through the broker.
   *
   * @ignore
   */
  get [remote](): RemoteSpec {
    return {
      direct: true,
      calls: { wait: ["options"], add: ["number"], done: [] },
      immediate: { count: "await group.wait({ timeout: 0 })" },
      oneWay: ["done"],
    };
  }

  /**
   * Describes this wait group for a thread: the same shared word.
   *
   * @ignore
   */
  [describe](context: DescribeContext): Descriptor {
    return {
      kind: "WaitGroup",
      module: import.meta.url,
      state: sharedState(context, this.#words.buffer, "WaitGroup"),
    };
  }

  #change(delta: number, method: string): void {
    const words = this.#words;
    let count = Atomics.load(words, COUNTER);
    for (;;) {
      const next = count + delta;
      if (next < 0 || next > MAX_COUNT) {
        throw new RangeError(
          `Cannot ${method === "done" ? "call done() on" : `add ${delta} to`} WaitGroup: ` +
            `its counter would go from ${count} to ${next}` +
            (next < 0 ? " (more done() than add())" : ""),
        );
      }
      const seen = Atomics.compareExchange(words, COUNTER, count, next);
      if (seen === count) break;
      count = seen;
    }
    if (count + delta === 0) notify(words, COUNTER);
  }

  *#steps(deadline: Deadline, signal?: AbortSignal): WaitSteps<boolean> {
    const words = this.#words;
    for (;;) {
      const count = Atomics.load(words, COUNTER);
      if (count === 0) return true;
      const timeout = deadline.remaining();
      if (timeout === 0) return false;
      const reason = yield { words, index: COUNTER, expected: count, timeout, signal };
      if (reason === "aborted") throw abortReason(signal);
    }
  }
}

registerReviver(
  "WaitGroup",
  (ref: SharedRef) => adopting(ref, () => new WaitGroup()),
);
