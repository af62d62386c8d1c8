/**
 * `Semaphore`: Python's `threading.Semaphore` over shared memory.
 *
 * ```text
 *   Int32Array over 7 words of shared memory (`internal/memory.ts`)
 *   ┌───────────┬───────────┬───────────┬───────────┬───────────┬───────────┬───────────┐
 *   │ 0 COUNT   │ 1 GRANTED │ 2 OPEN    │ 3 WAKE    │ 4 DIED    │ 5 (unused)│ 6 START   │
 *   └───────────┴───────────┴───────────┴───────────┴───────────┴───────────┴───────────┘
 *   COUNT    > 0: free permits; < 0: minus the callers in line
 *   GRANTED  permits handed to the line, for the waiter a release woke
 *   OPEN     permits handed to the line, for any caller in it
 *   WAKE     the sequence number callers in line sleep on
 *   DIED     set when a dead holder's permits were given back for it
 *   START    the permits it was created with (BoundedSemaphore's bound)
 * ```
 *
 * Words 0–5 are the permit counter of `_permits.ts`: taking a permit is one
 * `compareExchange` of COUNT from n to n - 1; a release is one from n to
 * n + 1, and when n was below zero it hands the permit to the caller in line
 * that has slept longest. `release()` may raise the count above START (as in
 * Python); the `BoundedSemaphore` subclass refuses to.
 *
 * Fairness (see `_permits.ts`): nobody overtakes the callers in line, and
 * those that sleep are served in the order they went to sleep; when nobody
 * is in line, whoever comes first takes a permit.
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
import type { WaitOptions } from "../internal/wait.ts";
import type { SharedRef } from "../internal/memory.ts";
import {
  acquirePermit,
  acquirePermitSync,
  COUNT,
  PERMIT_WORDS,
  releasePermit,
  takeFree,
} from "./_permits.ts";
import {
  adopting,
  adoption,
  checkCount,
  type Lease,
  leaseFor,
  MAX_COUNT,
  registerPermitWords,
  sharedState,
  sharedWords,
} from "./_shared.ts";

/** The permits a semaphore was created with. */
export const START = PERMIT_WORDS;

let wordsOf: (semaphore: Semaphore) => Int32Array;

/**
 * A counter of permits shared by every thread it is passed to (Python's
 * `threading.Semaphore`): `acquire()` takes a permit, waiting while there is
 * none; `release()` gives one back. Use it to let at most `n` callers into a
 * section at once.
 *
 * Callers that have to wait are served first come, first served: nobody
 * arriving later overtakes them.
 *
 * @example Let two in at a time
 * ```ts
 * import assert from "node:assert/strict";
 * import { Semaphore } from "@parallel/core";
 *
 * const slots = new Semaphore(2);
 * const a = await slots.acquire();
 * const b = await slots.acquire();
 * assert.deepEqual(slots.tryAcquire(), undefined);
 * a[Symbol.dispose]();
 * b[Symbol.dispose]();
 * ```
 */
export class Semaphore {
  readonly #words: Int32Array;

  static {
    wordsOf = (semaphore) => semaphore.#words;
  }

  /**
   * Creates a semaphore holding `permits` permits.
   *
   * @param permits How many callers may hold a permit at once (a whole
   *   number >= 0).
   * @throws {RangeError} When `permits` is negative, not whole, NaN, or above
   *   2147483647.
   * @throws {TypeError} When `permits` is not a number.
   *
   * @example
   * ```ts
   * import { Semaphore } from "@parallel/core";
   * const semaphore = new Semaphore(3);
   * ```
   */
  constructor(permits: number) {
    const buffer = adoption();
    if (buffer) {
      this.#words = new Int32Array(buffer);
    } else {
      const name = new.target.name;
      checkCount(permits, 0, `Cannot create ${name}`, "permits");
      this.#words = sharedWords(PERMIT_WORDS + 1);
      this.#words[COUNT] = permits;
      this.#words[START] = permits;
    }
    registerPermitWords(this, this.#words);
  }

  /**
   * Waits for a permit without blocking the thread, then takes it.
   *
   * @param options `timeout` in milliseconds, and a `signal` to stop waiting.
   * @returns A lease; disposing it (or calling `release()`) gives the permit back.
   * @throws {TimeoutError} When `timeout` passes first (the promise rejects).
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is aborted: the signal's `reason` (by default a
   *   `DOMException` named `"AbortError"`).
   *
   * @example
   * ```ts
   * import { Semaphore } from "@parallel/core";
   * const semaphore = new Semaphore(1);
   * using _permit = await semaphore.acquire({ timeout: 1000 });
   * ```
   */
  async acquire(options?: WaitOptions): Promise<Lease> {
    await acquirePermit(this.#words, options, this.constructor.name);
    return leaseFor(this, this.#words);
  }

  /**
   * Blocks the calling thread until it takes a permit. Meant for threads: on
   * the main thread it freezes the event loop while it waits.
   *
   * @param options `timeout` in milliseconds; a `signal` is only checked
   *   before waiting, since a blocked thread cannot see it fire.
   * @returns A lease; disposing it (or calling `release()`) gives the permit back.
   * @throws {TimeoutError} When `timeout` passes first.
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is already aborted: the signal's `reason`.
   *
   * @example
   * ```ts
   * import { Semaphore } from "@parallel/core";
   * const semaphore = new Semaphore(1);
   * using _permit = semaphore.acquireSync({ timeout: 1000 });
   * ```
   */
  acquireSync(options?: WaitOptions): Lease {
    acquirePermitSync(this.#words, options, this.constructor.name);
    return leaseFor(this, this.#words);
  }

  /**
   * Takes a permit if one is free now, without waiting.
   *
   * @returns A lease, or `undefined` when no permit is free.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Semaphore } from "@parallel/core";
   * const semaphore = new Semaphore(1);
   * assert.deepEqual(semaphore.tryAcquire() !== undefined, true);
   * assert.deepEqual(semaphore.tryAcquire(), undefined);
   * ```
   */
  tryAcquire(): Lease | undefined {
    return takeFree(this.#words) ? leaseFor(this, this.#words) : undefined;
  }

  /**
   * Gives a permit back, waking a waiter if there is one. A `Semaphore` may
   * be released more often than it was acquired, which adds permits.
   *
   * @throws {RangeError} When the count would pass 2147483647.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Semaphore } from "@parallel/core";
   * const semaphore = new Semaphore(0);
   * semaphore.release();
   * assert.deepEqual(semaphore.tryAcquire() !== undefined, true);
   * ```
   */
  release(): void {
    if (!releasePermit(this.#words, MAX_COUNT)) {
      throw new RangeError(`Cannot release Semaphore: it already holds ${MAX_COUNT} permits`);
    }
  }

  /**
   * How a child process uses it through the broker.
   *
   * @ignore
   */
  get [remote](): RemoteSpec {
    return {
      calls: { acquire: ["options"], release: [] },
      immediate: { tryAcquire: "await semaphore.acquire({ timeout: 0 })" },
      oneWay: ["release"],
    };
  }

  /**
   * Describes this semaphore for a thread: the same shared words.
   *
   * @ignore
   */
  [describe](context: DescribeContext): Descriptor {
    return {
      kind: "Semaphore",
      module: import.meta.url,
      state: sharedState(context, this.#words.buffer, "Semaphore"),
    };
  }
}

/** The shared words of a semaphore, for `BoundedSemaphore`. */
export function semaphoreWords(semaphore: Semaphore): Int32Array {
  return wordsOf(semaphore);
}

registerReviver(
  "Semaphore",
  (ref: SharedRef) => adopting(ref, () => new Semaphore(0)),
);
