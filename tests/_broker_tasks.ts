// Task functions that use the parent's shared objects from a child process.
import type { Event, Mutex, SharedArray, Value } from "../mod.ts";

/** Increments `value` `times` times by load + store under `mutex`: exact only if the mutex excludes. */
export async function lockedIncrements(
  mutex: Mutex,
  value: Value<"int32">,
  times: number,
): Promise<void> {
  for (let i = 0; i < times; i++) {
    using _ = await mutex.acquire();
    const seen = await value.load();
    await new Promise((resolve) => setTimeout(resolve, 1));
    await value.store(seen + 1);
  }
}

export async function atomicAdds(value: Value<"int32">, times: number): Promise<number> {
  let last = 0;
  for (let i = 0; i < times; i++) last = await value.add(1);
  return last;
}

export async function acquireAndDie(mutex: Mutex): Promise<void> {
  await mutex.acquire();
  Deno.exit(7);
}

export async function acquireAndReport(mutex: Mutex): Promise<boolean> {
  using lease = await mutex.acquire({ timeout: 5_000 });
  return lease.previousOwnerDied;
}

export async function waitForEvent(event: Event): Promise<boolean> {
  return await event.wait({ timeout: 5_000 });
}

export function tryImmediate(mutex: Mutex): string {
  try {
    mutex.tryAcquire();
    return "no error";
  } catch (error) {
    return (error as Error).message;
  }
}

export function returnHandle(mutex: Mutex): Mutex {
  return mutex;
}

export async function fillSquares(array: SharedArray<"float64">): Promise<number> {
  for (let i = 0; i < array.length; i++) await array.set(i, i * i);
  return array.length;
}
