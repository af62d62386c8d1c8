/**
 * The condition variable under `Condition` and `Barrier`: three shared words
 * next to a lock, with Python's `wait` / `notify(n)` semantics.
 *
 * ```text
 *   Int32Array
 *   ┌───────────┬───────────┬──────────┐
 *   │ 0 WAITING │ 1 SIGNALS │ 2 WAKE   │
 *   └───────────┴───────────┴──────────┘
 *   WAITING  callers inside wait()
 *   SIGNALS  wake-ups granted by notify() and not yet taken (<= WAITING)
 *   WAKE     a sequence number; waiters sleep on it, notify() bumps it
 * ```
 *
 * Every change to WAITING and SIGNALS is made with the lock held, so they
 * agree. `wait` registers, reads WAKE, lets go of the lock, sleeps on WAKE
 * with the value it read, takes the lock back, and returns `true` if it can
 * take a signal. A `notify(n)` that runs after the read changes WAKE, so no
 * notify is lost; one that ran before left a signal behind. A wake-up with no
 * signal left (another waiter took it, or a spurious one) sleeps again.
 * `notify(n)` grants `min(n, WAITING - SIGNALS)` signals and wakes as many
 * sleepers, so it releases at most `n` waiters, as in Python.
 *
 * Fairness: `Atomics.notify` wakes sleepers in the order they went to sleep,
 * so a waiter is signalled before those that began waiting after it, except
 * that a waiter that wakes without finding a signal (one was taken by a
 * waiter that had not gone to sleep yet) sleeps again at the back. A waiter
 * that times out or is aborted takes no signal with it: the signal stays for
 * the others.
 *
 * @module
 */

import { type Deadline, notify, type WaitSteps } from "../internal/wait.ts";
import { claimNow, claimSteps, FOREVER, type Protocol, takeOne } from "./_permits.ts";
import { abortReason } from "./_shared.ts";

/** Callers inside wait(). */
export const WAITING = 0;
/** Granted wake-ups not yet taken. */
export const SIGNALS = 1;
/** The sequence number waiters sleep on. */
export const WAKE = 2;
/** How many words the condition variable takes. */
export const CONDVAR_WORDS = 3;

/** What a condition variable needs from the lock it waits with. */
export interface LockCore {
  /** The lock's permit words (`_permits.ts`). */
  readonly words: Int32Array;
  /** How this process takes the lock's permit (`_permits.ts`: in line, or outside it in a child). */
  readonly protocol: Protocol;
  /** Whether the calling thread holds the lock (for a `Mutex`: whether it is locked). */
  holds(): boolean;
  /** Lets go of the lock completely; returns what `restore` needs. */
  releaseAll(): number;
  /** Becomes the lock's holder again after its permit was taken back. */
  restore(saved: number): void;
}

/** The core of each `Mutex` and `ReentrantMutex`, for `Condition`. */
export const lockCores: WeakMap<object, LockCore> = new WeakMap();

/**
 * `Condition.wait`: returns `true` when notified, `false` when the deadline
 * passes, and throws the signal's reason on abort, always with the lock held
 * again. The caller has checked that it holds the lock.
 */
export function* conditionWaitSteps(
  words: Int32Array,
  lock: LockCore,
  deadline: Deadline,
  signal?: AbortSignal,
  counted = -1,
): WaitSteps<boolean> {
  Atomics.add(words, WAITING, 1);
  // A child counts its waits too, counted after WAITING and uncounted before it, so that a
  // parent takes out of WAITING no more than the waits of a child that died.
  if (counted >= 0) Atomics.add(words, counted, 1);
  for (;;) {
    const seen = Atomics.load(words, WAKE);
    const saved = lock.releaseAll();
    const timeout = deadline.remaining();
    const reason = timeout === 0
      ? "timed-out"
      : yield { words, index: WAKE, expected: seen, timeout, signal };
    if (!claimNow(lock.words, lock.protocol)) {
      yield* claimSteps(lock.words, FOREVER, undefined, lock.protocol);
    }
    lock.restore(saved);
    if (reason === "aborted") {
      if (counted >= 0) Atomics.sub(words, counted, 1);
      const waiting = Atomics.sub(words, WAITING, 1) - 1;
      // Keep SIGNALS <= WAITING; the other waiters were woken by the abort.
      if (Atomics.load(words, SIGNALS) > waiting) Atomics.sub(words, SIGNALS, 1);
      throw abortReason(signal);
    }
    if (takeOne(words, SIGNALS)) {
      if (counted >= 0) Atomics.sub(words, counted, 1);
      Atomics.sub(words, WAITING, 1);
      return true;
    }
    if (deadline.remaining() === 0) {
      if (counted >= 0) Atomics.sub(words, counted, 1);
      Atomics.sub(words, WAITING, 1);
      return false;
    }
  }
}

/**
 * `Condition.waitFor`: waits until `predicate()` is true or the deadline
 * passes, and returns the predicate's last value.
 */
export function* waitForSteps<T>(
  words: Int32Array,
  lock: LockCore,
  predicate: () => T,
  deadline: Deadline,
  signal?: AbortSignal,
  counted = -1,
): WaitSteps<T> {
  let result = predicate();
  while (!result) {
    const notified = yield* conditionWaitSteps(words, lock, deadline, signal, counted);
    result = predicate();
    if (!notified) break;
  }
  return result;
}

/**
 * A child's waits that died with it: takes `waits` out of WAITING, and the
 * signals granted beyond what is left. The caller holds the lock.
 */
export function forgetWaits(words: Int32Array, waits: number): void {
  const waiting = Atomics.sub(words, WAITING, waits) - waits;
  if (Atomics.load(words, SIGNALS) > waiting) Atomics.store(words, SIGNALS, waiting);
}

/** `Condition.notify(n)`: wakes at most `n` waiters. The caller holds the lock. */
export function notifyCondition(words: Int32Array, n: number): void {
  const waiting = Atomics.load(words, WAITING);
  const signals = Atomics.load(words, SIGNALS);
  const granted = Math.min(n, waiting - signals);
  if (granted <= 0) return;
  Atomics.add(words, SIGNALS, granted);
  Atomics.add(words, WAKE, 1);
  notify(words, WAKE, granted);
}
