/**
 * The loops `sync_bench.ts` runs in threads. Each runs `ops` operations, so
 * that a bench iteration measures many of them inside one worker.
 *
 * @module
 */

import type { Value } from "../processes/mod.ts";
import type { Mutex } from "../sync/mod.ts";

/** The bare lock to compare with: spin on compareExchange, release with a store. */
export function bareLock(word: Int32Array, ops: number): void {
  for (let i = 0; i < ops; i++) {
    while (Atomics.compareExchange(word, 0, 0, 1) !== 0) {
      // spin
    }
    Atomics.store(word, 0, 0);
  }
}

/** `ops` times `acquireSync()` then `release()`. */
export function mutexLock(mutex: Mutex, ops: number): void {
  for (let i = 0; i < ops; i++) {
    mutex.acquireSync();
    mutex.release();
  }
}

/** `ops` times `using _lock = mutex.acquireSync()`: the lease releases it. */
export function mutexUsing(mutex: Mutex, ops: number): void {
  for (let i = 0; i < ops; i++) {
    using _lock = mutex.acquireSync();
  }
}

/** The floor for `Value.addSync`: `ops` times `Atomics.add(word, 0, 1)`. */
export function bareAdd(word: Int32Array, ops: number): void {
  for (let i = 0; i < ops; i++) Atomics.add(word, 0, 1);
}

/** `ops` times `value.addSync(1)`. */
export function valueAdd(value: Value<"int32">, ops: number): void {
  for (let i = 0; i < ops; i++) value.addSync(1);
}

/** Slots of the flags `holdUntilWaited` and the async bench share. */
export const HOLDING = 0;
export const WAITING = 1;
export const STOP = 2;
export const TAKEN = 3;

/**
 * Takes the mutex, raises `flags[HOLDING]`, and holds it until the main
 * thread says (with `flags[WAITING]`) that it is waiting for it; then
 * releases it, handing it to the main thread, and waits until the main thread
 * says it took it (`flags[TAKEN]`: a caller in line that has not gone to
 * sleep yet may lose an open grant to a newer one); and again, until
 * `flags[STOP]` is raised. Returns how many times it held the mutex.
 */
export function holdUntilWaited(mutex: Mutex, flags: Int32Array): number {
  let rounds = 0;
  while (Atomics.load(flags, STOP) === 0) {
    mutex.acquireSync();
    Atomics.store(flags, HOLDING, 1);
    while (Atomics.load(flags, WAITING) === 0 && Atomics.load(flags, STOP) === 0) {
      Atomics.wait(flags, WAITING, 0, 10);
    }
    Atomics.store(flags, WAITING, 0);
    Atomics.store(flags, HOLDING, 0);
    mutex.release();
    rounds++;
    while (Atomics.load(flags, TAKEN) === 0 && Atomics.load(flags, STOP) === 0) {
      Atomics.wait(flags, TAKEN, 0, 10);
    }
    Atomics.store(flags, TAKEN, 0);
  }
  return rounds;
}
