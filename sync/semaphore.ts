/**
 * `Semaphore`: Python's `threading.Semaphore` over shared memory.
 *
 * ```text
 *   Int32Array over 80 words of shared memory (`internal/memory.ts`)
 *   ┌───────────┬───────────┬───────────┬───────────┬───────────┬───────────┐
 *   │ 0 COUNT   │ 1 GRANTED │ 2 OPEN    │ 3 WAKE    │ 4 DIED    │ 5 (unused)│
 *   ├───────────┼───────────┼───────────┼───────────┼───────────┴───────────┘
 *   │ 6 LOOSE   │ 7 OUTSIDE_│ 8 OUTSIDE │ 9 START   │  10–15 unused
 *   │           │   SEQ     │           │           │
 *   ├───────────┴───────────┴───────────┴───────────┴──────────────────────┐
 *   │ 16–79 HOLDERS: 32 slots of (pid, permits held) for child processes    │
 *   └───────────────────────────────────────────────────────────────────────┘
 *   COUNT    > 0: free permits; < 0: minus the callers in line
 *   GRANTED  permits handed to the line, for the waiter a release woke
 *   OPEN     permits handed to the line, for any caller in it
 *   WAKE     the sequence number callers in line sleep on
 *   DIED     set when a dead holder's permits were given back for it
 *   LOOSE, OUTSIDE_SEQ, OUTSIDE   how child processes take and give permits
 *   START    the permits it was created with (BoundedSemaphore's bound)
 *   HOLDERS  a slot per child process that uses it directly: its pid and
 *            how many permits it holds
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
 * A child process that maps this program's memory uses a semaphore
 * directly, as a counter of `_permits.ts` that children use: it never joins
 * the line (it waits outside it, served after the callers in line) and gives
 * permits in one atomic step. It counts the permits it took less those it
 * gave in its HOLDERS slot (taken by its pid on first use), counting one
 * right after taking it and uncounting it right before giving it; when the
 * child ends, for any reason, the parent gives back what its slots count
 * when that is more than none, marks DIED (so the next lease says
 * `previousOwnerDied`) and frees the slots, as the broker does for a child
 * that ends holding leases. (So a child that takes permits for good, as from
 * a semaphore counting items, has them given back when it ends.) A child
 * killed in the instant between taking a permit and counting it, or between
 * uncounting and giving it, loses that permit.
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
import {
  checkTimeout,
  Deadline,
  runAsync,
  runSync,
  type WaitOptions,
  type WaitSteps,
} from "../internal/wait.ts";
import { isParents, type SharedRef } from "../internal/memory.ts";
import {
  acquirePermit,
  acquirePermitSync,
  claimFree,
  COUNT,
  DIED,
  givePermit,
  NONE,
  releasePermit,
  waitOutsideSteps,
  wakeEveryone,
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
  timedOut,
} from "./_shared.ts";
import { slotOf, takeSlotsOf } from "./_holds.ts";

/** The permits a semaphore was created with. */
export const START = 9;
/** The first HOLDERS slot: (pid, permits held) for each child process using it directly. */
const HOLDERS = 16;
/** How many child processes may use one semaphore directly at once. */
const SLOTS = 32;
/** Words of a semaphore. */
const SEMAPHORE_WORDS = HOLDERS + 2 * SLOTS;

/** The BoundedSemaphores: their release stops at START. */
const bounded = new WeakSet<Semaphore>();

let wordsOf: (semaphore: Semaphore) => Int32Array;
let recoverOf: (semaphore: Semaphore) => (pid: number) => void;

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
  /** In a child process that maps the parent's memory: the word counting the permits it holds. */
  #held = -1;
  readonly #inChild: boolean;

  static {
    wordsOf = (semaphore) => semaphore.#words;
    recoverOf = (semaphore) => (pid) => semaphore.#recoverFrom(pid);
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
    this.#inChild = buffer !== undefined && isParents(buffer);
    if (buffer) {
      this.#words = new Int32Array(buffer);
    } else {
      const name = new.target.name;
      checkCount(permits, 0, `Cannot create ${name}`, "permits");
      this.#words = sharedWords(SEMAPHORE_WORDS);
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
    const name = this.constructor.name;
    if (!this.#inChild) {
      await acquirePermit(this.#words, options, name, "parent");
    } else if (!this.#claimInChild()) {
      const timeout = checkTimeout(options?.timeout, `Cannot acquire ${name}`);
      options?.signal?.throwIfAborted();
      if (!await runAsync(this.#waitInChild(timeout, options?.signal))) {
        throw timedOut(`${name}.acquire()`, timeout);
      }
    }
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
    const name = this.constructor.name;
    if (!this.#inChild) {
      acquirePermitSync(this.#words, options, name, undefined, "parent");
    } else if (!this.#claimInChild()) {
      const timeout = checkTimeout(options?.timeout, `Cannot acquire ${name}`);
      options?.signal?.throwIfAborted();
      if (!runSync(this.#waitInChild(timeout, undefined))) {
        throw timedOut(`${name}.acquireSync()`, timeout);
      }
    }
    return leaseFor(this, this.#words);
  }

  /** In a child: takes a free permit and counts it in this process's slot. */
  #claimInChild(): boolean {
    const held = this.#slot();
    if (!claimFree(this.#words)) return false;
    Atomics.add(this.#words, held, 1);
    return true;
  }

  /** In a child: waits outside the line for a free permit; `false` when `timeout` passes. */
  *#waitInChild(timeout: number, signal: AbortSignal | undefined): WaitSteps<boolean> {
    const attempt = () => this.#claimInChild() || NONE;
    return (yield* waitOutsideSteps(this.#words, attempt, new Deadline(timeout), signal)) !== NONE;
  }

  /** In a child: the word of this process's HOLDERS slot, taken on first use. */
  #slot(): number {
    if (this.#held < 0) {
      this.#held = slotOf(this.#words, HOLDERS, SLOTS, this.constructor.name);
    }
    return this.#held;
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
    const taken = this.#inChild ? this.#claimInChild() : claimFree(this.#words);
    return taken ? leaseFor(this, this.#words) : undefined;
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
    if (this.#give()) return;
    throw new RangeError(
      bounded.has(this)
        ? `Cannot release BoundedSemaphore: all ${
          this.#words[START]
        } of its permits are already released`
        : `Cannot release Semaphore: it already holds ${MAX_COUNT} permits`,
    );
  }

  /**
   * Gives a permit back: `false` when it holds its most already (START for
   * a BoundedSemaphore). A child uncounts it from its slot first.
   */
  #give(): boolean {
    const words = this.#words;
    const limit = bounded.has(this) ? words[START] : MAX_COUNT;
    if (!this.#inChild) return givePermit(words, limit, "parent");
    const held = this.#slot();
    Atomics.sub(words, held, 1);
    if (givePermit(words, limit, "child")) return true;
    Atomics.add(words, held, 1);
    return false;
  }

  /**
   * The parent's part when child process `pid` has ended: gives back the
   * permits its slot counts, marking DIED when there were any, and frees the
   * slot; then wakes every waiter to look again.
   */
  #recoverFrom(pid: number): void {
    const words = this.#words;
    const limit = bounded.has(this) ? words[START] : MAX_COUNT;
    // The child's permits taken less given, over its slots (two threads may take one each).
    const held = takeSlotsOf(words, HOLDERS, SLOTS, pid);
    if (held > 0) {
      Atomics.add(words, DIED, 1);
      for (let i = 0; i < held && releasePermit(words, limit); i++);
    }
    wakeEveryone(words);
  }

  /**
   * How a child process uses it through the broker.
   *
   * @ignore
   */
  get [remote](): RemoteSpec {
    return {
      direct: true,
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
    return describeSemaphore(this, "Semaphore", import.meta.url, context);
  }
}

/**
 * The descriptor of `semaphore` as a `kind` (its reviver in `module`); for
 * a child that maps memory, the parent mends it when that child ends.
 */
export function describeSemaphore(
  semaphore: Semaphore,
  kind: string,
  module: string,
  context: DescribeContext,
): Descriptor {
  const words = wordsOf(semaphore);
  return { kind, module, state: sharedState(context, words.buffer, kind, recoverOf(semaphore)) };
}

/** Makes `semaphore` refuse to hold more than it started with (a `BoundedSemaphore`). */
export function makeBounded(semaphore: Semaphore): void {
  bounded.add(semaphore);
}

registerReviver(
  "Semaphore",
  (ref: SharedRef) => adopting(ref, () => new Semaphore(0)),
);
