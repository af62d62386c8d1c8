/**
 * Which process holds a `Mutex`, so that a parent can release the lock of a
 * child process that died holding it; and what else a parent puts right when
 * a child that maps its memory ends.
 *
 * Through the broker the parent holds a child's leases itself. A child that
 * maps the parent's memory locks a `Mutex` directly, so the mutex's OWNER
 * word (`_permits.ts`) says which child holds it: its pid, written right
 * after locking and cleared right before unlocking, by whichever thread of
 * that child does it (the parent writes nothing there for its own holds, and
 * clears it when it unlocks for a child: any thread may unlock a `Mutex`). When a child is gone, the
 * parent looks at the mutexes it sent to children that map memory
 * ({@linkcode mutexRecovery}) and releases each one still held by that
 * child's pid, marking it (DIED) so that the next holder, in any process or
 * thread, learns of it (`lease.previousOwnerDied`). A child killed in the
 * instant between locking and writing its pid, or between clearing it and
 * unlocking, leaves that lock as it is.
 *
 * Mutexes (a `Condition`'s and a `Value`'s lock too) here; the rings of
 * queues, whose lock word holds its holder's pid itself (`queue/_ring.ts`),
 * semaphores, barriers and conditions, which count each child's share in a
 * slot of their own ({@linkcode slotOf}), pass what mends them to
 * `sharedState` (`_shared.ts`), which registers it with
 * {@linkcode whenChildEnds} for a child that maps memory. A
 * child with FFI can write anything anywhere in the parent's shared memory;
 * the parent only ever mends objects it sent to such a child.
 *
 * @module
 */

import { acquireSteps, claimNow, COUNT, DIED, FOREVER, OWNER } from "./_permits.ts";
import { runAsync } from "../internal/wait.ts";
import type { Releasable } from "./_shared.ts";

/** This process's pid: what a `Mutex` it locks holds in its OWNER word. */
export const PID: number = Deno.pid;

/** What to put right, for each object sent to a child that maps memory, when a child is gone. */
const sent = new Map<ArrayBufferLike, (pid: number) => void>();

/**
 * Remembers that the object in `buffer` went to a child that maps memory:
 * `recover` is called with the pid of every child that ends (a queue's ring
 * finishes what a child died doing under its lock: `queue/_ring.ts`).
 */
export function whenChildEnds(buffer: ArrayBufferLike, recover: (pid: number) => void): void {
  sent.set(buffer, recover);
}

/** What mends `owner` (permit words `words`), a mutex, when a child that maps memory ends. */
export function mutexRecovery(owner: Releasable, words: Int32Array): (pid: number) => void {
  return (pid) => releaseHeldBy(owner, words, pid);
}

/** Child `pid` is gone: releases, and marks, every mutex it was holding, and mends every queue. */
export function recoverFromEndOf(pid: number): void {
  for (const recover of sent.values()) recover(pid);
}

function releaseHeldBy(owner: Releasable, words: Int32Array, pid: number): void {
  if (words[OWNER] !== pid || Atomics.load(words, COUNT) >= 1) return;
  words[OWNER] = 0;
  Atomics.add(words, DIED, 1);
  try {
    owner.release();
  } catch {
    // Released meanwhile by someone else: any holder may release a Mutex.
  }
}

// ---- per-process slots --------------------------------------------------------

/**
 * The word counting this process's share of something (a semaphore's
 * permits, a barrier's parties, a condition's waits) in a table of `slots`
 * pairs (pid, count) from word `first` of `words`: its own pair, or a free
 * one it takes (by compareExchange of the pid) on first use.
 *
 * @throws {Error} When every slot is another process's (`what` names the object).
 */
export function slotOf(words: Int32Array, first: number, slots: number, what: string): number {
  const end = first + 2 * slots;
  for (let at = first; at < end; at += 2) {
    if (Atomics.load(words, at) === PID) return at + 1;
  }
  for (let at = first; at < end; at += 2) {
    if (Atomics.compareExchange(words, at, 0, PID) === 0) return at + 1;
  }
  throw new Error(`Cannot use this ${what} in one more process: ${slots} child processes do`);
}

/** Frees the slots of process `pid` in such a table and returns the sum of their counts. */
export function takeSlotsOf(words: Int32Array, first: number, slots: number, pid: number): number {
  let sum = 0;
  for (let at = first; at < first + 2 * slots; at += 2) {
    if (Atomics.load(words, at) !== pid) continue;
    sum += Atomics.exchange(words, at + 1, 0);
    Atomics.store(words, at, 0);
  }
  return sum;
}

/**
 * Runs `mend` holding a lock of this process (its permit words `words`),
 * then `unlock`: at once when the lock is free, else once this process gets
 * it (without blocking: the lock's holder may be another dead child, which
 * this process mends too), so that `mend` changes what only the lock's
 * holder changes. When a dead child held it (`held`), its hold is taken over.
 */
export function mendUnderLock(
  words: Int32Array,
  held: boolean,
  mend: () => void,
  unlock: () => void,
): void {
  const run = () => {
    try {
      mend();
    } finally {
      unlock();
    }
  };
  if (held || claimNow(words, "parent")) {
    run();
    return;
  }
  runAsync(acquireSteps(words, FOREVER, undefined, true)).then(run).catch(() => {});
}
