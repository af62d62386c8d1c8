/**
 * Which process holds a `Mutex`, so that a parent can release the lock of a
 * child process that died holding it.
 *
 * Through the broker the parent holds a child's leases itself. A child that
 * maps the parent's memory locks a `Mutex` directly, so the mutex's OWNER
 * word (`_permits.ts`) says which process holds it: the pid, written right
 * after locking and cleared right before unlocking, by whichever thread of
 * that process does it (any may unlock a `Mutex`). When a child is gone, the
 * parent looks at the mutexes it sent to children that map memory
 * ({@linkcode registerHolder}) and releases each one still held by that
 * child's pid, marking it (DIED) so that the next holder, in any process or
 * thread, learns of it (`lease.previousOwnerDied`). A child killed in the
 * instant between locking and writing its pid, or between clearing it and
 * unlocking, leaves that lock as it is.
 *
 * Only mutexes (a `Condition`'s and a `Value`'s lock too): a semaphore's
 * permits have many holders, and semaphores reach children through the
 * broker. A child with FFI can write anything anywhere in the parent's
 * shared memory; the parent only ever releases mutexes it sent to such a
 * child, once each.
 *
 * @module
 */

import { COUNT, DIED, OWNER } from "./_permits.ts";
import type { Releasable } from "./_shared.ts";

/** This process's pid: what a `Mutex` it locks holds in its OWNER word. */
export const PID: number = Deno.pid;

/** The mutexes sent to children that map memory, with their permit words. */
const sent = new Map<Releasable, Int32Array>();

/** Remembers `owner` (permit words `words`) as sent to a child that maps memory. */
export function registerHolder(owner: Releasable, words: Int32Array): void {
  sent.set(owner, words);
}

/** Child `pid` is gone: releases, and marks, every mutex it was holding. */
export function releaseLocksOf(pid: number): void {
  for (const [owner, words] of sent) {
    if (words[OWNER] !== pid || Atomics.load(words, COUNT) >= 1) continue;
    words[OWNER] = 0;
    Atomics.add(words, DIED, 1);
    try {
      owner.release();
    } catch {
      // Released meanwhile by someone else: any holder may release a Mutex.
    }
  }
}
