/**
 * `Mutex`: Python's `threading.Lock` over shared memory.
 *
 * ```text
 *   Int32Array over 9 words of shared memory (`internal/memory.ts`)
 *   ┌─────────┬───────────┬────────┬────────┬────────┬─────────┬─────────┬─────────────┬───────────┐
 *   │ 0 COUNT │ 1 GRANTED │ 2 OPEN │ 3 WAKE │ 4 DIED │ 5 OWNER │ 6 LOOSE │ 7 OUTSIDE_  │ 8 OUTSIDE │
 *   │         │           │        │        │        │         │         │   SEQ       │           │
 *   └─────────┴───────────┴────────┴────────┴────────┴─────────┴─────────┴─────────────┴───────────┘
 *   COUNT    1: unlocked; 0: locked; -n: locked, n callers in line
 *   GRANTED  hand-offs reserved for the waiter a release woke
 *   OPEN     hand-offs any caller in line may take
 *   WAKE     the sequence number callers in line sleep on
 *   DIED     set when a dead holder's lock was released for it
 *   OWNER    the holder's pid (`_holds.ts`)
 *   LOOSE, OUTSIDE_SEQ, OUTSIDE   how child processes take and give it
 * ```
 *
 * The mutex is the permit counter of `_permits.ts` with one permit. Locking
 * is one `compareExchange` of COUNT from 1 to 0 and unlocking one from 0 to
 * 1, as for a bare spin lock. Unlocking with callers in line (COUNT < 0)
 * hands the mutex to the one that has slept longest instead of freeing it.
 * It is not owned: any thread may release it, as with Python's `Lock` (use
 * `ReentrantMutex` for an owned lock). Unlocking refuses to take COUNT above
 * 1, so releasing an unlocked mutex is caught and changes nothing.
 *
 * Fairness (see `_permits.ts`): nobody overtakes the callers in line, and
 * those that sleep are served in the order they went to sleep; when nobody
 * is in line, whoever comes first takes the mutex. A child process that maps
 * this program's memory never joins the line (a dead caller could not be
 * taken out of it): it waits outside, after the callers in line, and
 * unlocks in one atomic step (`_permits.ts`, "counters a child process uses
 * directly").
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
import { isParents, type SharedRef } from "../internal/memory.ts";
import { lockCores } from "./_condvar.ts";
import { mutexRecovery, PID } from "./_holds.ts";
import {
  acquirePermit,
  acquirePermitSync,
  claimNow,
  COUNT,
  givePermit,
  LOOSE,
  OUTSIDE,
  OWNER,
  type Protocol,
  SHARED_PERMIT_WORDS,
  signalOutside,
} from "./_permits.ts";
import {
  adopting,
  adoption,
  type Lease,
  leaseFor,
  registerPermitWords,
  sharedState,
  sharedWords,
} from "./_shared.ts";

/**
 * A lock that one holder at a time can take, shared by every thread it is
 * passed to (Python's `threading.Lock`). Wait for it with `await acquire()`
 * anywhere, or block with `acquireSync()` in a thread; both give a lease
 * that `using` releases at the end of the scope.
 *
 * Callers that have to wait are served first come, first served: nobody
 * arriving later overtakes them.
 *
 * @example Guard a shared counter
 * ```ts
 * import assert from "node:assert/strict";
 * import { Mutex } from "@parallel/core";
 *
 * const mutex = new Mutex();
 * const counter = new Int32Array(new SharedArrayBuffer(4));
 * {
 *   using _lock = await mutex.acquire();
 *   counter[0] += 1;
 * } // released here
 * assert.equal(counter[0], 1);
 * assert.equal(mutex.locked, false);
 * ```
 */
export class Mutex {
  readonly #words: Int32Array;
  /** How this process takes it: in line, or outside the line in a child that maps the memory. */
  readonly #protocol: Protocol;
  /**
   * Whether this is a child process that maps the parent's memory: only it
   * writes its pid into OWNER while it holds the mutex (`_holds.ts`); the
   * parent, whose holds no one needs to release for it, leaves OWNER at 0.
   */
  readonly #inChild: boolean;

  /**
   * Creates an unlocked mutex.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Mutex } from "@parallel/core";
   * const mutex = new Mutex();
   * assert.deepEqual(mutex.locked, false);
   * ```
   */
  constructor() {
    const buffer = adoption();
    this.#words = buffer ? new Int32Array(buffer) : sharedWords(SHARED_PERMIT_WORDS);
    if (!buffer) this.#words[COUNT] = 1;
    const words = this.#words;
    const protocol = buffer !== undefined && isParents(buffer) ? "child" : "parent";
    this.#protocol = protocol;
    const inChild = protocol === "child";
    this.#inChild = inChild;
    registerPermitWords(this, words);
    lockCores.set(this, {
      words,
      protocol,
      holds: () => Atomics.load(words, COUNT) < 1,
      releaseAll: () => {
        this.release();
        return 1;
      },
      restore: () => {
        if (inChild) words[OWNER] = PID;
      },
    });
  }

  /** Whether the mutex is locked now (by anyone). */
  get locked(): boolean {
    const count = Atomics.load(this.#words, COUNT);
    // A LOOSE permit left with nobody in line (`_permits.ts`) is the mutex, free.
    return count < 0 || (count === 0 && Atomics.load(this.#words, LOOSE) === 0);
  }

  /**
   * Waits for the mutex without blocking the thread, then locks it.
   *
   * @param options `timeout` in milliseconds, and a `signal` to stop waiting.
   * @returns A lease; disposing it (or calling `release()`) unlocks the mutex.
   * @throws {TimeoutError} When `timeout` passes first (the promise rejects).
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is aborted: the signal's `reason` (by default a
   *   `DOMException` named `"AbortError"`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Mutex } from "@parallel/core";
   * const mutex = new Mutex();
   * using _lock = await mutex.acquire({ timeout: 1000 });
   * assert.deepEqual(mutex.locked, true);
   * ```
   */
  acquire(options?: WaitOptions): Promise<Lease> {
    // Free now, with no options to check: no async function, no await.
    if (options === undefined && claimNow(this.#words, this.#protocol)) {
      return Promise.resolve(this.#hold());
    }
    return this.#acquireWaiting(options);
  }

  async #acquireWaiting(options: WaitOptions | undefined): Promise<Lease> {
    await acquirePermit(this.#words, options, "Mutex", this.#protocol);
    return this.#hold();
  }

  /** The lease of a hold just taken; a child notes its pid in OWNER (see `_holds.ts`). */
  #hold(): Lease {
    if (this.#inChild) this.#words[OWNER] = PID;
    return leaseFor(this, this.#words);
  }

  /**
   * Blocks the calling thread until it locks the mutex. Meant for threads: on
   * the main thread it freezes the event loop while it waits.
   *
   * @param options `timeout` in milliseconds; a `signal` is only checked
   *   before waiting, since a blocked thread cannot see it fire.
   * @returns A lease; disposing it (or calling `release()`) unlocks the mutex.
   * @throws {TimeoutError} When `timeout` passes first.
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is already aborted: the signal's `reason`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Mutex } from "@parallel/core";
   * const mutex = new Mutex();
   * using _lock = mutex.acquireSync();
   * assert.deepEqual(mutex.locked, true);
   * ```
   */
  acquireSync(options?: WaitOptions): Lease {
    if (options !== undefined || Atomics.compareExchange(this.#words, COUNT, 1, 0) !== 1) {
      acquirePermitSync(this.#words, options, "Mutex", 1, this.#protocol);
    }
    return this.#hold();
  }

  /**
   * Locks the mutex if it is unlocked now, without waiting.
   *
   * @returns A lease, or `undefined` when the mutex is locked.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Mutex } from "@parallel/core";
   * const mutex = new Mutex();
   * const lease = mutex.tryAcquire();
   * assert.ok(lease !== undefined);
   * assert.equal(mutex.tryAcquire(), undefined);
   * ```
   */
  tryAcquire(): Lease | undefined {
    if (!claimNow(this.#words, this.#protocol)) return undefined;
    return this.#hold();
  }

  /**
   * Unlocks the mutex. Any thread may unlock it, not only the one that
   * locked it.
   *
   * @throws {Error} When the mutex is not locked; it stays usable.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Mutex } from "@parallel/core";
   * const mutex = new Mutex();
   * await mutex.acquire();
   * mutex.release();
   * assert.deepEqual(mutex.locked, false);
   * ```
   */
  release(): void {
    const words = this.#words;
    // A child's pid, when a child holds it (this process may release it for the child).
    const owner = words[OWNER];
    if (owner !== 0) words[OWNER] = 0;
    // The common case inline (a bare unlock): free, nobody in line, no LOOSE permit, no child
    // waiting. It is one atomic step, so a child takes it too (as `giveFromChild` would).
    if (words[LOOSE] === 0 && Atomics.compareExchange(words, COUNT, 0, 1) === 0) {
      if (words[OUTSIDE] !== 0) signalOutside(words);
      return;
    }
    if (givePermit(words, 1, this.#protocol, 0)) return;
    words[OWNER] = owner;
    throw new Error("Cannot release Mutex: it is not locked");
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
      immediate: {
        locked: "the lease from await mutex.acquire()",
        tryAcquire: "await mutex.acquire({ timeout: 0 })",
      },
      oneWay: ["release"],
    };
  }

  /**
   * Describes this mutex for a thread: the same shared words.
   *
   * @ignore
   */
  [describe](context: DescribeContext): Descriptor {
    return {
      kind: "Mutex",
      module: import.meta.url,
      state: sharedState(
        context,
        this.#words.buffer,
        "Mutex",
        mutexRecovery(this, this.#words),
      ),
    };
  }
}

registerReviver(
  "Mutex",
  (ref: SharedRef) => adopting(ref, () => new Mutex()),
);
