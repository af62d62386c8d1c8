// Task functions for children that map their parent's shared memory (tests/mapped_test.ts):
// they use the synchronous forms, which only work on memory the child touches itself.
import type {
  Barrier,
  BoundedSemaphore,
  Condition,
  Event,
  JoinableQueue,
  LifoQueue,
  Mutex,
  PipeEnd,
  PriorityQueue,
  Queue,
  Semaphore,
  SharedArray,
  Value,
  WaitGroup,
} from "../mod.ts";
import { queueRing } from "../queue/queue.ts";

/** The real `Atomics`, as a task found it before patching some of its functions. */
const realAtomics = Object.getOwnPropertyDescriptors(Atomics);

/**
 * Plays a child killed at this very step: puts `Atomics` back as it was,
 * writes this child's pid into `pid` (the parent kills it), and spins.
 */
function stopHere(pid: Value<"int32">): never {
  Object.defineProperties(Atomics, realAtomics);
  pid.storeSync(Deno.pid);
  for (;;) {
    // Spins until the parent kills this child.
  }
}

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

/**
 * Passes `count` items from `input` to `output`, doubled, with the blocking
 * forms (which a child that uses queues through the broker cannot call);
 * then says what `tryGet` and `size` answer on the emptied input.
 */
export function relaySync(
  input: Queue<number>,
  output: Queue<number>,
  count: number,
): { left: unknown; size: number } {
  for (let i = 0; i < count; i++) output.putSync(2 * input.getSync({ timeout: 10_000 }));
  return { left: input.tryGet(), size: input.size };
}

/** Gets items until the queue is closed, marking each done; returns them. */
export async function consume(queue: JoinableQueue<number>): Promise<number[]> {
  const got: number[] = [];
  for await (const item of queue) {
    got.push(item);
    queue.taskDone();
  }
  return got;
}

/** Writes this child's pid into `pid`, then waits for an item (the parent kills it meanwhile). */
export async function getUntilKilled(queue: Queue<string>, pid: Value<"int32">): Promise<void> {
  pid.storeSync(Deno.pid);
  await queue.get({ timeout: 10_000 });
}

/** Writes this child's pid into `pid`, then puts and gets items until the parent kills it. */
export function churnUntilKilled(queue: Queue<string>, pid: Value<"int32">): void {
  pid.storeSync(Deno.pid);
  for (let i = 0;; i++) {
    queue.putSync(`${i}`, { timeout: 10_000 });
    queue.getSync({ timeout: 10_000 });
  }
}

/**
 * Plays a child killed in the middle of a queue call, inside the ring's
 * lock: runs a `getSync` or a `putSync("b")` with `Atomics` patched so that
 * at `when` it writes this child's pid into `pid` and spins until killed.
 * `"claimed"`: a get has just claimed its item's permit; `"noted"`: the
 * call has noted its change to the ring, not applied it; `"took"`: a get
 * has taken its item and not given its place back.
 */
export function dieInQueueCall(
  queue: Queue<string>,
  call: "get" | "put",
  when: "claimed" | "noted" | "took",
  pid: Value<"int32">,
): void {
  const header = queueRing(queue).header;
  const { compareExchange, store } = Atomics;
  const die = () => stopHere(pid);
  // Word offsets in the ring's header (queue/_ring.ts): ITEMS, SPACE, NOTED.
  const items = (array: Int32Array) => array.buffer === header.buffer && array.byteOffset === 64;
  const space = (array: Int32Array) => array.buffer === header.buffer && array.byteOffset === 128;
  Atomics.compareExchange = ((array: Int32Array, index: number, from: number, to: number) => {
    if (when === "took" && space(array) && index === 0 && to > from) die();
    const seen = compareExchange(array, index, from, to);
    if (when === "claimed" && items(array) && index === 0 && seen === from && to < from) die();
    return seen;
  }) as typeof Atomics.compareExchange;
  Atomics.store = ((array: Int32Array, index: number, value: number) => {
    const stored = store(array, index, value);
    if (when === "noted" && array === header && index === 2 && value > 0) die();
    return stored;
  }) as typeof Atomics.store;
  if (call === "get") queue.getSync({ timeout: 10_000 });
  else queue.putSync("b", { timeout: 10_000 });
}

/** How a call that cannot succeed ended: its error's name, "(signal)" when it is the signal's reason. */
async function outcome(call: () => unknown): Promise<string> {
  try {
    await call();
    return "succeeded";
  } catch (error) {
    return `${(error as Error).name}${error instanceof DOMException ? " (signal)" : ""}`;
  }
}

/**
 * Waits for a `Mutex` or `Semaphore` the parent holds, and for an item of an
 * empty `queue`, every way a wait can end early: `timeout` (async and sync)
 * and an aborted `signal`, each after `ms`.
 */
export async function waitsThatEnd(
  lock: Mutex | Semaphore,
  queue: Queue<string>,
  ms: number,
): Promise<string[]> {
  return [
    await outcome(() => lock.acquire({ timeout: ms })),
    await outcome(() => lock.acquire({ signal: AbortSignal.timeout(ms) })),
    await outcome(() => lock.acquireSync({ timeout: ms })),
    await outcome(() => queue.get({ timeout: ms })),
    await outcome(() => queue.get({ signal: AbortSignal.timeout(ms) })),
    await outcome(() => queue.getSync({ timeout: ms })),
  ];
}

/** Takes `lock` (waiting up to 10 s), then gets an item of `queue`: what the get returned. */
export async function takeBoth(lock: Mutex | Semaphore, queue: Queue<string>): Promise<string> {
  using _lease = await lock.acquire({ timeout: 10_000 });
  return await queue.get({ timeout: 10_000 });
}

/** Gets one item, waiting up to `ms`: the item, or the error's name. */
export async function getWithin(queue: Queue<string>, ms: number): Promise<string> {
  try {
    return await queue.get({ timeout: ms });
  } catch (error) {
    return (error as Error).name;
  }
}

/**
 * A `putSync("b")` that dies right after its item's permit left this child
 * while a caller waited in line for one (the permit counter's word moved),
 * before anything else: writes this child's pid into `pid` and spins until killed.
 */
export function dieGivingToTheLine(queue: Queue<string>, pid: Value<"int32">): void {
  const header = queueRing(queue).header;
  const { add, compareExchange } = Atomics;
  const die = () => stopHere(pid);
  // The ITEMS permit counter is at word 16 of the header: a give moves its count (word 0 of
  // it) or its LOOSE permits (word 6).
  const items = (array: Int32Array) => array.buffer === header.buffer && array.byteOffset === 64;
  Atomics.compareExchange = ((array: Int32Array, index: number, from: number, to: number) => {
    const seen = compareExchange(array, index, from, to);
    if (items(array) && index === 0 && seen === from && to > from) die();
    return seen;
  }) as typeof Atomics.compareExchange;
  Atomics.add = ((array: Int32Array, index: number, value: number) => {
    const old = add(array, index, value);
    if (items(array) && index === 6 && value > 0) die();
    return old;
  }) as typeof Atomics.add;
  queue.putSync("b", { timeout: 10_000 });
}

/** Gets an item and calls `taskDone()`, dying right after it unlocks the ring (see above). */
export function dieInTaskDone(queue: JoinableQueue<string>, pid: Value<"int32">): void {
  queue.getSync({ timeout: 10_000 });
  const header = queueRing(queue).header;
  const { exchange } = Atomics;
  Atomics.exchange = ((array: Int32Array, index: number, value: number) => {
    const old = exchange(array, index, value);
    if (array === header && index === 0) stopHere(pid);
    return old;
  }) as typeof Atomics.exchange;
  queue.taskDone();
}

/**
 * Takes `permits` permits of `semaphore` with `acquireSync` (which a child
 * that uses it through the broker cannot call), writes this child's pid into
 * `pid`, then waits until the parent kills it.
 */
export async function holdPermitsUntilKilled(
  semaphore: Semaphore,
  permits: number,
  pid: Value<"int32">,
): Promise<void> {
  for (let i = 0; i < permits; i++) semaphore.acquireSync({ timeout: 10_000 });
  pid.storeSync(Deno.pid);
  await new Promise(() => setInterval(() => {}, 1_000));
}

/**
 * Waits for a permit of `semaphore` with `acquireSync` (the parent holds it),
 * then gives it back. Its timeout is far beyond the test's deadline: only a
 * wake-up ends the wait in time.
 */
export function waitForPermit(semaphore: Semaphore): string {
  const lease = semaphore.acquireSync({ timeout: 60_000 });
  const tried = semaphore.tryAcquire();
  lease[Symbol.dispose]();
  return tried === undefined ? "waited, then none free" : "waited, then one more free";
}

/**
 * `rounds` times: takes a permit of `semaphore`, counts itself in `inside`
 * (recording the most ever inside in `most`), gives it back.
 */
export function crowdSync(
  semaphore: Semaphore,
  inside: Value<"int32">,
  most: Value<"int32">,
  rounds: number,
): void {
  for (let i = 0; i < rounds; i++) {
    using _permit = semaphore.acquireSync({ timeout: 10_000 });
    const now = inside.addSync(1);
    if (now > most.loadSync()) most.storeSync(now);
    inside.addSync(-1);
  }
}

/** Releases `semaphore` once more than it holds: the RangeError's message. */
export function overRelease(semaphore: BoundedSemaphore): string {
  try {
    semaphore.release();
    return "no error";
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * Answers each number that comes through `end` with the running total, with
 * the blocking forms (which a child that uses the end through the broker
 * cannot call), until the other end closes it; then what `pollSync` says.
 */
export function runningTotalSync(end: PipeEnd<number>): { total: number; polled: boolean } {
  let total = 0;
  for (;;) {
    if (!end.pollSync(10_000)) throw new Error("nothing came");
    let n: number;
    try {
      n = end.recvSync();
    } catch {
      return { total, polled: end.pollSync(0) };
    }
    total += n;
    end.sendSync(total);
  }
}

/** Writes this child's pid into `pid`, then waits for `mutex` (the parent holds it and kills this child). */
export async function waitForMutexUntilKilled(mutex: Mutex, pid: Value<"int32">): Promise<void> {
  pid.storeSync(Deno.pid);
  await mutex.acquire({ timeout: 10_000 });
}

/** Waits at `barrier` with `waitSync` (which a child that uses it through the broker cannot call). */
export function meet(barrier: Barrier): number {
  return barrier.waitSync({ timeout: 10_000 });
}

/** Writes this child's pid into `pid`, then waits at `barrier` (the parent kills it meanwhile). */
export function meetUntilKilled(barrier: Barrier, pid: Value<"int32">): number {
  pid.storeSync(Deno.pid);
  return barrier.waitSync({ timeout: 60_000 });
}

/**
 * Starts a `waitSync` at `barrier` that dies holding its lock (its pid written as the holder,
 * PHASE about to be read): writes this child's pid into `pid` and spins until killed.
 */
export function dieHoldingBarrierLock(barrier: Barrier, pid: Value<"int32">): void {
  const { load } = Atomics;
  Atomics.load = ((array: Int32Array, index: number) => {
    // The barrier's words: its lock's OWNER (word 5) holds this child's pid; word 12 is PHASE.
    if (index === 12 && array.length >= 80 && array[5] === Deno.pid) stopHere(pid);
    return load(array, index);
  }) as typeof Atomics.load;
  barrier.waitSync({ timeout: 10_000 });
}

/** Takes `condition`'s lock, writes this child's pid into `pid`, then waits (the parent kills it). */
export function waitOnConditionUntilKilled(condition: Condition, pid: Value<"int32">): boolean {
  condition.acquireSync({ timeout: 10_000 });
  pid.storeSync(Deno.pid);
  return condition.waitSync({ timeout: 60_000 });
}

/**
 * Gets every item of `queue` with `getSync` (which a child that uses it
 * through the broker cannot call), then puts `items` back with `putSync`,
 * each with its priority when the queue takes one.
 */
export function drainThenPut(
  queue: PriorityQueue<string> | LifoQueue<string>,
  items: [string, number][],
): string[] {
  const got: string[] = [];
  for (let item = queue.tryGet(); item !== undefined; item = queue.tryGet()) got.push(item.value);
  for (const [item, priority] of items) {
    (queue as PriorityQueue<string>).putSync(item, { priority, timeout: 10_000 });
  }
  return got;
}

/**
 * Plays a child killed in the middle of an ordered queue's heap: runs a
 * `getSync`, or a `putSync("new", { priority })`, that stops after the
 * heap's `stops`-th move of an entry (a `copyWithin` of the index).
 */
export function dieInHeap(
  queue: PriorityQueue<string>,
  call: "get" | "put",
  priority: number,
  stops: number,
  pid: Value<"int32">,
): void {
  const { copyWithin } = Float64Array.prototype;
  let moves = 0;
  Float64Array.prototype.copyWithin = function (
    this: Float64Array,
    ...args: [number, number, number]
  ) {
    const done = copyWithin.apply(this, args);
    if (++moves === stops) {
      Float64Array.prototype.copyWithin = copyWithin;
      stopHere(pid);
    }
    return done;
  };
  if (call === "get") queue.getSync({ timeout: 10_000 });
  else queue.putSync("new", { priority, timeout: 10_000 });
}

/** A `getSync` on `queue` that stops right before it notes its change (see `dieInQueueCall`). */
export function dieBeforeNoting(queue: PriorityQueue<string>, pid: Value<"int32">): void {
  const header = queueRing(queue).header;
  const { store } = Atomics;
  Atomics.store = ((array: Int32Array, index: number, value: number) => {
    if (array === header && index === 2 && value > 0) stopHere(pid);
    return store(array, index, value);
  }) as typeof Atomics.store;
  queue.getSync({ timeout: 10_000 });
}
