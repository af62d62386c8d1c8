import type { Mutex, Value } from "../mod.ts";

/** `times` awaited `add(1)`s, one after another. */
export async function addMany(value: Value<"int32">, times: number): Promise<void> {
  for (let i = 0; i < times; i++) await value.add(1);
}

/** `times` `addSync(1)`s: only in a child that maps the parent's memory. */
export function addSyncMany(value: Value<"int32">, times: number): void {
  for (let i = 0; i < times; i++) value.addSync(1);
}

/** `times` increments under the Value's lock, as Python's `with v.get_lock(): v.value += 1`. */
export async function lockedIncrements(value: Value<"int32">, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    using _lock = await value.lock.acquire();
    await value.store((await value.load()) + 1);
  }
}

/** `times` increments under the Value's lock, blocking: `acquireSync`, `loadSync`, `storeSync`. */
export function lockedIncrementsSync(value: Value<"int32">, times: number): void {
  for (let i = 0; i < times; i++) {
    const lease = value.lock.acquireSync();
    value.storeSync(value.loadSync() + 1);
    lease[Symbol.dispose]();
  }
}

/** `times` uncontended `acquireSync` + `release` of `mutex`. */
export function mutexRounds(mutex: Mutex, times: number): void {
  for (let i = 0; i < times; i++) {
    mutex.acquireSync();
    mutex.release();
  }
}
