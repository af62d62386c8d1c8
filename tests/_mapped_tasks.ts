// Task functions for children that map their parent's shared memory (tests/mapped_test.ts):
// they use the synchronous forms, which only work on memory the child touches itself.
import type {
  Condition,
  Event,
  Mutex,
  Queue,
  Semaphore,
  SharedArray,
  Value,
  WaitGroup,
} from "../mod.ts";

/** Adds 1 to `value` `times` times with `addSync`, which fails in a child that uses the broker. */
export function addSyncTimes(value: Value<"int32">, times: number): number {
  let last = 0;
  for (let i = 0; i < times; i++) last = value.addSync(1);
  return last;
}

/** Fills `array` with squares with `setSync`. */
export function fillSquaresSync(array: SharedArray<"float64">): number {
  for (let i = 0; i < array.length; i++) array.setSync(i, i * i);
  return array.length;
}

/** Blocks this child in `waitSync` until the parent sets `event`. */
export function waitSyncForEvent(event: Event, timeout: number): boolean {
  return event.waitSync({ timeout });
}

/** Sets `event` from the child. */
export function setEvent(event: Event): void {
  event.set();
}

/** Waits on an `event` nobody sets, with a signal that fires after `ms`: the wait's outcome. */
export async function abortedWait(event: Event, ms: number): Promise<string> {
  try {
    await event.wait({ signal: AbortSignal.timeout(ms) });
    return "woke";
  } catch (error) {
    return (error as Error).name;
  }
}

/** Calls `done()` on `group` after `ms`. */
export async function doneAfter(group: WaitGroup, ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  group.done();
}

/** Whether `value.addSync` works here: it throws in a child that reaches `value` through the broker. */
export function canAddSync(value: Value<"int32">): string {
  try {
    value.addSync(1);
    return "direct";
  } catch {
    return "broker";
  }
}

/** Increments `value` `times` times under `mutex`, blocking: exact only if the mutex excludes. */
export function lockedIncrementsSync(mutex: Mutex, value: Value<"int32">, times: number): void {
  for (let i = 0; i < times; i++) {
    using _lock = mutex.acquireSync({ timeout: 10_000 });
    value.storeSync(value.loadSync() + 1);
  }
}

/** Takes `permits` permits of `mutex`, then ends this child with them held. */
export function holdAndExit(mutex: Mutex, permits: number): void {
  for (let i = 0; i < permits; i++) mutex.acquireSync({ timeout: 10_000 });
  Deno.exit(3);
}

/** Takes `permits` permits of `semaphore` with `await acquire()`, then ends this child. */
export async function holdAsyncAndExit(semaphore: Semaphore, permits: number): Promise<void> {
  for (let i = 0; i < permits; i++) await semaphore.acquire({ timeout: 10_000 });
  Deno.exit(3);
}

/** Takes `mutex`, writes this child's pid into `pid`, then waits forever (the parent kills it). */
export async function holdUntilKilled(mutex: Mutex, pid: Value<"int32">): Promise<void> {
  await mutex.acquire({ timeout: 10_000 });
  pid.storeSync(Deno.pid);
  await new Promise(() => setInterval(() => {}, 1_000));
}

/** Takes `mutex` and says whether the lease reports a holder that died. */
export function acquireSyncAndReport(mutex: Mutex): boolean {
  using lease = mutex.acquireSync({ timeout: 10_000 });
  return lease.previousOwnerDied;
}

/** Waits on `condition` until `ready` holds 1; returns what it saw. */
export function waitForReady(condition: Condition, ready: Value<"int32">): number {
  using _lock = condition.acquireSync({ timeout: 10_000 });
  condition.waitForSync(() => ready.loadSync() === 1, { timeout: 10_000 });
  return ready.loadSync();
}

/** Returns what it was given. */
export function returnIt<T>(given: T): T {
  return given;
}

/**
 * How a queue reaches this child: `size` answers only where the queue is used
 * directly; through the broker it throws. Then it echoes `count` items back,
 * doubled, with the async forms, which work either way.
 */
export async function queueEcho(
  input: Queue<number>,
  output: Queue<number>,
  count: number,
): Promise<string> {
  let how: string;
  try {
    void input.size;
    how = "direct";
  } catch {
    how = "broker";
  }
  for (let i = 0; i < count; i++) await output.put(2 * await input.get());
  return how;
}

/** Locks `mutex` and returns with it locked (any holder may release a Mutex). */
export function lockAndReturn(mutex: Mutex): void {
  mutex.acquireSync({ timeout: 10_000 });
}
