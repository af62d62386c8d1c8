/**
 * `Condition`: Python's `threading.Condition` over shared memory: a lock
 * (a `Mutex` or `ReentrantMutex`) and a condition variable beside it.
 *
 * ```text
 *   the lock's own SharedArrayBuffer (see mutex.ts / reentrant_mutex.ts)
 *
 *   Int32Array over the condition's shared memory of 68 words
 *   ┌───────────┬───────────┬──────────┬─────┬──────────────────────────────┐
 *   │ 0 WAITING │ 1 SIGNALS │ 2 WAKE   │ 3 – │ 4–67 WAITERS: 32 slots of     │
 *   │           │           │          │     │ (pid, waits) for children    │
 *   └───────────┴───────────┴──────────┴─────┴──────────────────────────────┘
 *   WAITING  callers inside wait()
 *   SIGNALS  wake-ups granted by notify() and not yet taken
 *   WAKE     the sequence number waiters sleep on
 *   WAITERS  how many waits each child process that maps this program's
 *            memory has inside wait(): when a child ends, the parent takes
 *            them out of WAITING (and the signals beyond what is left), so
 *            a dead waiter takes no later notify's signal
 * ```
 *
 * The algorithm is in `_condvar.ts`: `wait` registers in WAITING, lets go of
 * the lock, sleeps on WAKE, takes the lock back and takes a signal;
 * `notify(n)` grants at most `n` signals (never more than there are waiters
 * without one) and wakes as many sleepers. With a `ReentrantMutex`, `wait`
 * releases every level the thread holds and restores them afterwards.
 *
 * Fairness: sleepers are woken in the order they went to sleep, and retaking
 * the lock follows the lock's own order (see `_permits.ts`). A waiter that
 * times out or is aborted leaves any signal for the others.
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
import { checkTimeout, Deadline, runAsync, runSync, type WaitOptions } from "../internal/wait.ts";
import type { WaitSteps } from "../internal/wait.ts";
import {
  conditionWaitSteps,
  CONDVAR_WORDS,
  forgetWaits,
  type LockCore,
  lockCores,
  notifyCondition,
  waitForSteps,
  WAITING,
} from "./_condvar.ts";
import {
  adopting,
  adoption,
  checkCount,
  type Lease,
  registerPermitWords,
  sharedState,
  sharedWords,
} from "./_shared.ts";
import { Mutex } from "./mutex.ts";
import { isParents, type SharedRef } from "../internal/memory.ts";
import { mendUnderLock, mutexRecovery, slotOf, takeSlotsOf } from "./_holds.ts";

/** The first slot of (pid, waits) for a child process that waits on the condition. */
const WAITERS = CONDVAR_WORDS + 1;
/** How many child processes may wait on one condition directly at once. */
const SLOTS = 32;
/** Words of a condition. */
const CONDITION_WORDS = WAITERS + 2 * SLOTS;
import { ReentrantMutex } from "./reentrant_mutex.ts";

/** A condition's lock and condition words in transit. */
interface ConditionState {
  buffer: SharedRef;
  lock: SharedRef;
  reentrant: boolean;
}

/**
 * A condition variable with its lock (Python's `threading.Condition`):
 * threads hold the lock, check some shared state, and `wait()` until another
 * thread changes it and calls `notify()`. The condition is itself lockable:
 * `acquire`, `acquireSync`, `tryAcquire` and `release` act on its mutex.
 * `wait` and `notify` must be called with the lock held; `wait` always
 * returns (or throws) holding it again.
 *
 * @example Producer and consumer on one thread
 * ```ts
 * import assert from "node:assert/strict";
 * import { Condition } from "@parallel/core";
 *
 * const items = new Int32Array(new SharedArrayBuffer(4));
 * const condition = new Condition();
 * setTimeout(async () => {
 *   using _lock = await condition.acquire();
 *   items[0] += 1;
 *   condition.notify();
 * }, 10);
 * using _lock = await condition.acquire();
 * const ready = await condition.waitFor(() => items[0] > 0, { timeout: 1000 });
 * assert.equal(ready, true);
 * assert.equal(items[0], 1);
 * ```
 */
export class Condition {
  readonly #words: Int32Array;
  /** In a child that maps the parent's memory: the word of its slot counting its waits. */
  #waitsHere = -1;
  readonly #inChild: boolean;
  readonly #mutex: Mutex | ReentrantMutex;
  readonly #lock: LockCore;

  /**
   * Creates a condition over `mutex`, or over a new `Mutex`.
   *
   * @param mutex The lock to wait with: a `Mutex` or a `ReentrantMutex`.
   * @throws {TypeError} When `mutex` is neither.
   *
   * @example
   * ```ts
   * import { Condition, ReentrantMutex } from "@parallel/core";
   * const plain = new Condition();
   * const reentrant = new Condition(new ReentrantMutex());
   * ```
   */
  constructor(mutex: Mutex | ReentrantMutex = new Mutex()) {
    const lock = lockCores.get(mutex);
    if (lock === undefined) {
      throw new TypeError(
        `Cannot create Condition: 'mutex' must be a Mutex or a ReentrantMutex: ` +
          `current value is ${show(mutex)}`,
      );
    }
    const buffer = adoption();
    this.#inChild = buffer !== undefined && isParents(buffer);
    this.#words = new Int32Array(buffer ?? sharedWords(CONDITION_WORDS).buffer);
    this.#mutex = mutex;
    this.#lock = lock;
    registerPermitWords(this, lock.words);
  }

  /**
   * Waits for the condition's mutex without blocking the thread, then takes it.
   *
   * @param options `timeout` in milliseconds, and a `signal` to stop waiting.
   * @returns A lease; disposing it (or calling `release()`) releases the mutex.
   * @throws {TimeoutError} When `timeout` passes first (the promise rejects).
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is aborted: the signal's `reason`.
   *
   * @example
   * ```ts
   * import { Condition } from "@parallel/core";
   * const condition = new Condition();
   * using _lock = await condition.acquire();
   * ```
   */
  acquire(options?: WaitOptions): Promise<Lease> {
    return this.#mutex.acquire(options);
  }

  /**
   * Blocks the calling thread until it takes the condition's mutex.
   *
   * @param options `timeout` in milliseconds; a `signal` is only checked
   *   before waiting.
   * @returns A lease; disposing it (or calling `release()`) releases the mutex.
   * @throws {TimeoutError} When `timeout` passes first.
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is already aborted: the signal's `reason`.
   *
   * @example
   * ```ts
   * import { Condition } from "@parallel/core";
   * const condition = new Condition();
   * using _lock = condition.acquireSync();
   * ```
   */
  acquireSync(options?: WaitOptions): Lease {
    return this.#mutex.acquireSync(options);
  }

  /**
   * Takes the condition's mutex if it is free now, without waiting.
   *
   * @returns A lease, or `undefined` when the mutex is held.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Condition } from "@parallel/core";
   * const condition = new Condition();
   * assert.deepEqual(condition.tryAcquire() !== undefined, true);
   * ```
   */
  tryAcquire(): Lease | undefined {
    return this.#mutex.tryAcquire();
  }

  /**
   * Releases the condition's mutex.
   *
   * @throws {Error} When the mutex is not locked (or, for a
   *   `ReentrantMutex`, not held by this thread).
   *
   * @example
   * ```ts
   * import { Condition } from "@parallel/core";
   * const condition = new Condition();
   * await condition.acquire();
   * condition.release();
   * ```
   */
  release(): void {
    this.#mutex.release();
  }

  /**
   * Releases the mutex, waits without blocking the thread until notified,
   * and takes the mutex back before it returns, whatever the outcome.
   *
   * @param options `timeout` in milliseconds, and a `signal` to stop waiting.
   * @returns `true` when notified, `false` when `timeout` passed first.
   * @throws {Error} When the mutex is not held (the promise rejects).
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is aborted: the signal's `reason`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Condition } from "@parallel/core";
   * const condition = new Condition();
   * using _lock = await condition.acquire();
   * assert.deepEqual(await condition.wait({ timeout: 5 }), false);
   * ```
   */
  async wait(options?: WaitOptions): Promise<boolean> {
    const deadline = this.#check(options, "wait on");
    return await runAsync(
      conditionWaitSteps(this.#words, this.#lock, deadline, options?.signal, this.#counted()),
    );
  }

  /**
   * Releases the mutex, blocks the calling thread until notified, and takes
   * the mutex back before it returns. Meant for threads.
   *
   * @param options `timeout` in milliseconds; a `signal` is only checked
   *   before waiting.
   * @returns `true` when notified, `false` when `timeout` passed first.
   * @throws {Error} When the mutex is not held.
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is already aborted: the signal's `reason`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Condition } from "@parallel/core";
   * const condition = new Condition();
   * using _lock = condition.acquireSync();
   * assert.deepEqual(condition.waitSync({ timeout: 5 }), false);
   * ```
   */
  waitSync(options?: WaitOptions): boolean {
    const deadline = this.#check(options, "wait on");
    return runSync(
      conditionWaitSteps(this.#words, this.#lock, deadline, undefined, this.#counted()),
    );
  }

  /**
   * Waits (as `wait`) until `predicate()` returns a truthy value, checking it first
   * and after each wake-up, with the mutex held.
   *
   * @param predicate Reads the shared state; called with the mutex held.
   * @param options `timeout` in milliseconds for the whole wait, and a `signal`.
   * @returns The predicate's last result (Python's `wait_for` too): falsy only
   *   when `timeout` passed.
   * @throws {Error} When the mutex is not held (the promise rejects).
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is aborted: the signal's `reason`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Condition } from "@parallel/core";
   * const condition = new Condition();
   * using _lock = await condition.acquire();
   * assert.equal(await condition.waitFor(() => true), true); // at once
   * ```
   */
  async waitFor<T>(predicate: () => T, options?: WaitOptions): Promise<T> {
    const deadline = this.#check(options, "wait on");
    return await runAsync(this.#waitFor(predicate, deadline, options?.signal));
  }

  /**
   * Blocks (as `waitSync`) until `predicate()` returns a truthy value. Meant for threads.
   *
   * @param predicate Reads the shared state; called with the mutex held.
   * @param options `timeout` in milliseconds for the whole wait; a `signal`
   *   is only checked before waiting.
   * @returns The predicate's last result (Python's `wait_for` too): falsy only
   *   when `timeout` passed.
   * @throws {Error} When the mutex is not held.
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is already aborted: the signal's `reason`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Condition } from "@parallel/core";
   * const condition = new Condition();
   * using _lock = condition.acquireSync();
   * assert.equal(condition.waitForSync(() => true), true); // at once
   * ```
   */
  waitForSync<T>(predicate: () => T, options?: WaitOptions): T {
    const deadline = this.#check(options, "wait on");
    return runSync(this.#waitFor(predicate, deadline));
  }

  /**
   * Wakes at most `n` of the callers waiting on this condition. They return
   * from `wait` once they can take the mutex back, after the caller
   * releases it.
   *
   * @param n How many waiters to wake: a whole number >= 0; default 1.
   * @throws {Error} When the mutex is not held.
   * @throws {RangeError} When `n` is negative or not whole.
   *
   * @example
   * ```ts
   * import { Condition } from "@parallel/core";
   * const condition = new Condition();
   * using _lock = await condition.acquire();
   * condition.notify(); // nobody waits: nothing happens
   * ```
   */
  notify(n?: number): void {
    n ??= 1;
    checkCount(n, 0, "Cannot notify Condition", "n");
    this.#checkHeld("notify");
    notifyCondition(this.#words, n);
  }

  /**
   * Wakes every caller waiting on this condition.
   *
   * @throws {Error} When the mutex is not held.
   *
   * @example
   * ```ts
   * import { Condition } from "@parallel/core";
   * const condition = new Condition();
   * using _lock = await condition.acquire();
   * condition.notifyAll();
   * ```
   */
  notifyAll(): void {
    this.#checkHeld("notify");
    notifyCondition(this.#words, Atomics.load(this.#words, WAITING));
  }

  /**
   * How a child process uses it through the broker.
   *
   * @ignore
   */
  get [remote](): RemoteSpec {
    return {
      // A ReentrantMutex is owned by a thread of one process: it stays on the broker.
      direct: !(this.#mutex instanceof ReentrantMutex),
      calls: {
        acquire: ["options"],
        release: [],
        wait: ["options"],
        notify: ["number"],
        notifyAll: [],
      },
      immediate: {
        tryAcquire: "await condition.acquire({ timeout: 0 })",
        waitFor: "a loop around await condition.wait()",
      },
      oneWay: ["release", "notify", "notifyAll"],
    };
  }

  /**
   * Describes this condition and its mutex for a thread: the same shared words.
   *
   * @ignore
   */
  [describe](context: DescribeContext): Descriptor {
    const state: ConditionState = {
      buffer: sharedState(
        context,
        this.#words.buffer,
        "Condition",
        (pid) => this.#recoverFrom(pid),
      ),
      lock: sharedState(
        context,
        this.#lock.words.buffer,
        "Condition",
        mutexRecovery(this.#mutex, this.#lock.words),
      ),
      reentrant: this.#mutex instanceof ReentrantMutex,
    };
    return { kind: "Condition", module: import.meta.url, state };
  }

  /**
   * The parent's part when child process `pid` has ended: takes its waits
   * out of WAITING, holding the lock, as every change of WAITING and SIGNALS
   * is made.
   */
  #recoverFrom(pid: number): void {
    const words = this.#words;
    const waits = takeSlotsOf(words, WAITERS, SLOTS, pid);
    if (waits === 0) return;
    mendUnderLock(this.#lock.words, false, () => forgetWaits(words, waits), () => {
      this.#mutex.release();
    });
  }

  #check(options: WaitOptions | undefined, action: string): Deadline {
    const timeout = checkTimeout(options?.timeout, `Cannot ${action} Condition`);
    options?.signal?.throwIfAborted();
    this.#checkHeld(action);
    return new Deadline(timeout);
  }

  #checkHeld(action: string): void {
    if (this.#lock.holds()) return;
    const mutex = this.#mutex instanceof ReentrantMutex
      ? "its ReentrantMutex is not held by this thread"
      : "its Mutex is not locked";
    throw new Error(`Cannot ${action} Condition: ${mutex}; acquire it first`);
  }

  #waitFor<T>(predicate: () => T, deadline: Deadline, signal?: AbortSignal): WaitSteps<T> {
    return waitForSteps(this.#words, this.#lock, predicate, deadline, signal, this.#counted());
  }

  /**
   * In a child: the word of its slot counting its waits (taken on first
   * use), so that the parent takes them out of WAITING when it ends; -1 here.
   */
  #counted(): number {
    if (!this.#inChild) return -1;
    if (this.#waitsHere < 0) this.#waitsHere = slotOf(this.#words, WAITERS, SLOTS, "Condition");
    return this.#waitsHere;
  }
}

registerReviver("Condition", (state: ConditionState) => {
  const mutex = state.reentrant
    ? adopting(state.lock, () => new ReentrantMutex())
    : adopting(state.lock, () => new Mutex());
  return adopting(state.buffer, () => new Condition(mutex));
});
