/**
 * `BoundedSemaphore`: Python's `threading.BoundedSemaphore`, a `Semaphore`
 * that refuses to hold more permits than it started with.
 *
 * ```text
 *   Int32Array over 7 words of shared memory (the Semaphore layout)
 *   ┌───────────┬───────────┬───────────┬───────────┬───────────┬───────────┬───────────┐
 *   │ 0 COUNT   │ 1 GRANTED │ 2 OPEN    │ 3 WAKE    │ 4 DIED    │ 5 (unused)│ 6 START   │
 *   └───────────┴───────────┴───────────┴───────────┴───────────┴───────────┴───────────┘
 *   COUNT    free permits (or minus the callers in line)
 *   START    the bound: the permits it was created with
 * ```
 *
 * A release compareExchanges COUNT from n to n + 1 only while n < START: at
 * START every permit is back, and one more would be a permit nobody took, a
 * bug in the caller (a double release). It throws and changes nothing; the
 * check and the increment are one atomic step, so concurrent over-releases
 * are caught too. Waiting and fairness are the Semaphore's (see
 * `_permits.ts`).
 *
 * @module
 */

import {
  describe,
  type DescribeContext,
  type Descriptor,
  registerReviver,
} from "../internal/codec.ts";
import { adopting } from "./_shared.ts";
import type { SharedRef } from "../internal/memory.ts";
import { describeSemaphore, makeBounded, Semaphore } from "./semaphore.ts";

/**
 * A `Semaphore` that throws when released more often than acquired (Python's
 * `threading.BoundedSemaphore`), which catches double releases.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BoundedSemaphore } from "@parallel/core";
 *
 * const slots = new BoundedSemaphore(1);
 * const lease = await slots.acquire();
 * lease[Symbol.dispose]();
 * assert.throws(() => slots.release(), /BoundedSemaphore/); // one release too many
 * ```
 */
export class BoundedSemaphore extends Semaphore {
  /**
   * Creates a bounded semaphore holding `permits` permits, at most.
   *
   * @param permits How many callers may hold a permit at once (a whole
   *   number >= 0); also the most it will ever hold.
   * @throws {RangeError} When `permits` is negative, not whole, NaN, or above
   *   2147483647.
   * @throws {TypeError} When `permits` is not a number.
   *
   * @example
   * ```ts
   * import { BoundedSemaphore } from "@parallel/core";
   * const semaphore = new BoundedSemaphore(2);
   * ```
   */
  constructor(permits: number) {
    super(permits);
    makeBounded(this);
  }

  /**
   * Gives a permit back, waking a waiter if there is one.
   *
   * @throws {RangeError} When every permit it started with is already back:
   *   the semaphore is unchanged and stays usable.
   *
   * @example
   * ```ts
   * import { BoundedSemaphore } from "@parallel/core";
   * const semaphore = new BoundedSemaphore(1);
   * await semaphore.acquire();
   * semaphore.release();
   * ```
   */
  override release(): void {
    super.release();
  }

  /**
   * Describes this semaphore for a thread: the same shared words.
   *
   * @ignore
   */
  override [describe](context: DescribeContext): Descriptor {
    return describeSemaphore(this, "BoundedSemaphore", import.meta.url, context);
  }
}

registerReviver(
  "BoundedSemaphore",
  (ref: SharedRef) => adopting(ref, () => new BoundedSemaphore(0)),
);
