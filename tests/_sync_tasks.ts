// Task functions the sync tests run in threads, by reference through tasks().
import type {
  Barrier,
  Condition,
  Event,
  Mutex,
  ReentrantMutex,
  Semaphore,
  WaitGroup,
} from "../sync/mod.ts";

/** Blocks this thread for `ms` milliseconds. */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** `times` increments of a plain (non-atomic) counter, each under the lock. */
export function lockedIncrements(
  lock: Mutex | ReentrantMutex,
  counter: Int32Array,
  times: number,
): number {
  for (let i = 0; i < times; i++) {
    using _lock = lock.acquireSync();
    counter[0] = counter[0] + 1;
  }
  return times;
}

/**
 * Enters the lock until `inside[3]` is raised, checking nobody else is
 * inside: `inside[0]` counts holders now, `inside[1]` overlaps seen,
 * `inside[2]` entries.
 */
export function exclusiveEntries(lock: Mutex, inside: Int32Array): number {
  let entries = 0;
  while (Atomics.load(inside, 3) === 0) {
    using _lock = lock.acquireSync({ timeout: 10_000 });
    if (Atomics.add(inside, 0, 1) !== 0) Atomics.add(inside, 1, 1);
    for (let spin = 0; spin < 100; spin++) Atomics.load(inside, 0);
    Atomics.sub(inside, 0, 1);
    Atomics.add(inside, 2, 1);
    entries++;
  }
  return entries;
}

/** Holds the lock for `ms`, raising `flags[0]` once it has it. */
export function holdFor(lock: Mutex | Semaphore, flags: Int32Array, ms: number): void {
  using _lock = lock.acquireSync({ timeout: 10_000 });
  Atomics.store(flags, 0, 1);
  sleepSync(ms);
}

/** Holds the lock, raising `flags[0]` once it has it, until `flags[1]` is raised (at most 10 s). */
export function holdUntilTold(lock: Mutex, flags: Int32Array): void {
  using _lock = lock.acquireSync({ timeout: 10_000 });
  Atomics.store(flags, 0, 1);
  Atomics.wait(flags, 1, 0, 10_000);
}

/**
 * Takes a permit `times` times and records in `stats[1]` the most holders
 * seen at once (`stats[0]` counts holders now).
 */
export function permitEntries(
  semaphore: Semaphore,
  stats: Int32Array,
  times: number,
  parties = 1,
): void {
  // Start together (stats[2] counts arrivals), so that the entries overlap; wait 5 s at most.
  Atomics.add(stats, 2, 1);
  const end = Date.now() + 5_000;
  while (Atomics.load(stats, 2) < parties && Date.now() < end) sleepSync(1);
  for (let i = 0; i < times; i++) {
    using _permit = semaphore.acquireSync({ timeout: 10_000 });
    const holders = Atomics.add(stats, 0, 1) + 1;
    let most = Atomics.load(stats, 1);
    while (holders > most) {
      const seen = Atomics.compareExchange(stats, 1, most, holders);
      if (seen === most) break;
      most = seen;
    }
    sleepSync(1);
    Atomics.sub(stats, 0, 1);
  }
}

/** Tries to lock with a timeout; returns the error's name, or "acquired". */
export function acquireSyncWithin(lock: Mutex, timeout: number): string {
  try {
    using _lock = lock.acquireSync({ timeout });
    return "acquired";
  } catch (error) {
    return (error as Error).name;
  }
}

/** Takes the reentrant mutex twice and raises `flags[0]`, then waits for `flags[1]`. */
export function holdReentrant(mutex: ReentrantMutex, flags: Int32Array): number {
  using _outer = mutex.acquireSync();
  using _inner = mutex.acquireSync();
  Atomics.store(flags, 0, 1);
  Atomics.notify(flags, 0);
  Atomics.wait(flags, 1, 0, 10_000);
  return 2;
}

/** Releases a mutex this thread does not own; returns the error message. */
export function releaseNotOwned(mutex: ReentrantMutex): string {
  try {
    mutex.release();
    return "released";
  } catch (error) {
    return (error as Error).message;
  }
}

/** Waits at the barrier; returns this thread's index. */
export function barrierWait(barrier: Barrier, timeout?: number): number {
  return barrier.waitSync({ timeout });
}

/** Waits at the barrier for `rounds` rounds; returns the indexes. */
export function barrierRounds(barrier: Barrier, rounds: number): number[] {
  const indexes = [];
  for (let round = 0; round < rounds; round++) indexes.push(barrier.waitSync({ timeout: 10_000 }));
  return indexes;
}

/** Waits at the barrier; returns the error's name. */
export function barrierFailure(barrier: Barrier, timeout?: number): string {
  try {
    return `index ${barrier.waitSync({ timeout })}`;
  } catch (error) {
    return (error as Error).name;
  }
}

/**
 * Produces 1 … `count` into a bounded shared buffer guarded by `condition`:
 * `buffer[0]` is how many items are in it, items follow from `buffer[1]`.
 */
export function produce(condition: Condition, buffer: Int32Array, count: number): void {
  const capacity = buffer.length - 1;
  for (let item = 1; item <= count; item++) {
    using _lock = condition.acquireSync();
    if (!condition.waitForSync(() => buffer[0] < capacity, { timeout: 10_000 })) {
      throw new Error("the consumer stopped taking items");
    }
    buffer[1 + buffer[0]] = item;
    buffer[0] += 1;
    condition.notifyAll();
  }
}

/** Consumes `count` items from the buffer `produce` fills; returns them in order. */
export function consume(condition: Condition, buffer: Int32Array, count: number): number[] {
  const items: number[] = [];
  while (items.length < count) {
    using _lock = condition.acquireSync();
    if (!condition.waitForSync(() => buffer[0] > 0, { timeout: 10_000 })) {
      throw new Error("the producer stopped");
    }
    items.push(buffer[1]);
    buffer.copyWithin(1, 2, 1 + buffer[0]);
    buffer[0] -= 1;
    condition.notifyAll();
  }
  return items;
}

/** Waits on the condition with the lock held; returns whether it was notified. */
export function conditionWait(condition: Condition, flags: Int32Array, timeout: number): boolean {
  using _lock = condition.acquireSync();
  Atomics.add(flags, 0, 1);
  return condition.waitSync({ timeout });
}

/**
 * Counts itself ready in `flags[1]`, waits (at most 10 s) until `flags[2]` says go, then
 * waits on the condition as {@linkcode conditionWait} does: threads that started at different
 * times go to sleep together.
 */
export function conditionWaitOnGo(
  condition: Condition,
  flags: Int32Array,
  timeout: number,
): boolean {
  Atomics.add(flags, 1, 1);
  Atomics.wait(flags, 2, 0, 10_000);
  return conditionWait(condition, flags, timeout);
}

/** Sets the event after `ms`. */
export function setLater(event: Event, ms: number): void {
  sleepSync(ms);
  event.set();
}

/** Waits for the event; returns what waitSync returned. */
export function eventWait(event: Event, timeout?: number): boolean {
  return event.waitSync({ timeout });
}

/** Does `ms` of work, then marks it done. */
export function workThenDone(group: WaitGroup, ms: number): void {
  sleepSync(ms);
  group.done();
}

/** Waits for the group in this thread; returns what waitSync returned. */
export function groupWait(group: WaitGroup, timeout: number): boolean {
  return group.waitSync({ timeout });
}

/** Uses primitives found inside an object, an array, a Map and a Set. */
export function nested(
  arg: { mutex: Mutex; events: Event[]; groups: Map<string, WaitGroup>; sems: Set<Semaphore> },
): string {
  using _lock = arg.mutex.acquireSync({ timeout: 1000 });
  arg.events[0].set();
  arg.groups.get("group")!.done();
  const [semaphore] = arg.sems;
  const permit = semaphore.tryAcquire();
  return permit === undefined ? "no permit" : "permit taken";
}

/**
 * Enters the lock `times` times, each with a timeout of 0–2 ms, checking as
 * `exclusiveEntries` does; returns how many attempts timed out.
 */
export function timedEntries(lock: Mutex, inside: Int32Array, times: number): number {
  let timeouts = 0;
  for (let i = 0; i < times; i++) {
    let lease: Disposable;
    try {
      lease = lock.acquireSync({ timeout: i % 3 });
    } catch (error) {
      if ((error as Error).name !== "TimeoutError") throw error;
      timeouts++;
      continue;
    }
    if (Atomics.add(inside, 0, 1) !== 0) Atomics.add(inside, 1, 1);
    for (let spin = 0; spin < 500; spin++) Atomics.load(inside, 0);
    Atomics.sub(inside, 0, 1);
    Atomics.add(inside, 2, 1);
    lease[Symbol.dispose]();
  }
  return timeouts;
}

/**
 * Counts itself ready in `gate[0]` and waits (at most 10 s) until `gate[me]` says go; then
 * takes the lock (blocking), writes `me` in the next place of `order` (`order[0]` counts the
 * places taken), and releases it.
 */
export function acquireInTurn(
  lock: Mutex,
  order: Int32Array,
  me: number,
  gate: Int32Array,
): void {
  Atomics.add(gate, 0, 1);
  Atomics.wait(gate, me, 0, 10_000);
  const lease = lock.acquireSync({ timeout: 10_000 });
  order[1 + Atomics.add(order, 0, 1)] = me;
  lease[Symbol.dispose]();
}
