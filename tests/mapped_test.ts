// Shared objects in children that map the parent's memory (a child that may use FFI, on Linux
// x86-64): they work on the same pages directly, synchronous forms included. Children without
// FFI reach the same objects through the broker (tests/broker_test.ts).
import assert from "node:assert/strict";
import {
  Barrier,
  BoundedSemaphore,
  Condition,
  Event,
  JoinableQueue,
  LifoQueue,
  Mutex,
  pipe,
  PriorityQueue,
  ProcessPool,
  Queue,
  Semaphore,
  SerializationError,
  SharedArray,
  tasks,
  ThreadPool,
  Value,
  WaitGroup,
} from "../mod.ts";
import { bufferOf, isMapped, memoryKind, type SharedRef } from "../internal/memory.ts";
import { queueRing } from "../queue/queue.ts";
import { describe, encode, type Shareable } from "../internal/codec.ts";
import { notify, waitAsync, waitSync } from "../internal/wait.ts";
import { sharedWords } from "../sync/_shared.ts";
import { recoverFromEndOf } from "../sync/_holds.ts";
import { releasePermit, SHARED_PERMIT_WORDS, takeFree } from "../sync/_permits.ts";
import { failure, runProgram, waitUntil, within } from "./_helpers.ts";

const work = tasks<typeof import("./_mapped_tasks.ts")>(
  new URL("./_mapped_tasks.ts", import.meta.url),
);

/** The shared memory of a `Mutex`, `Semaphore`, `Barrier` or `Condition` (not its mutex's). */
function sharedMemoryOf(primitive: Mutex | Semaphore | Barrier | Condition): ArrayBufferLike {
  const state = (primitive as unknown as Shareable)[describe]({ transport: "thread" }).state;
  const ref = primitive instanceof Condition ? (state as { buffer: SharedRef }).buffer : state;
  return bufferOf(ref as SharedRef);
}

const canMap = Deno.build.os === "linux" && Deno.build.arch === "x86_64" &&
  Deno.permissions.querySync({ name: "ffi" }).state === "granted";

Deno.test("shared memory is mapped exactly when this program may use FFI on Linux x86-64", () => {
  assert.equal(memoryKind(), canMap ? "mapped" : "heap");
  assert.equal(sharedWords(1).buffer instanceof SharedArrayBuffer, !canMap);
});

Deno.test("a child with FFI uses a Value directly; a child without it, through the broker", async () => {
  await using direct = new ProcessPool({ maxWorkers: 1 });
  await using brokered = new ProcessPool({ maxWorkers: 1, permissions: "none" });
  const value = new Value("int32", 0);
  assert.equal(await within(direct.submit(work.canAddSync, value)), canMap ? "direct" : "broker");
  assert.equal(await within(brokered.submit(work.canAddSync, value)), "broker");
});

/**
 * Waits until `task` (a pool task) has written its child's pid into `pid`,
 * runs `meanwhile`, kills the child with SIGKILL, and checks that the task
 * failed with `WorkerCrashedError`.
 */
async function killChild(
  task: PromiseLike<unknown>,
  pid: Value<"int32">,
  meanwhile?: () => unknown,
): Promise<void> {
  const dying = failure(task);
  await waitUntil(() => pid.loadSync() !== 0);
  await meanwhile?.();
  Deno.kill(pid.loadSync(), "SIGKILL");
  assert.equal((await dying).name, "WorkerCrashedError");
}

// Everything below needs the mapped path: without it the synchronous forms fail in a child.
const mapped = { ignore: !canMap };

Deno.test({
  ...mapped,
  name: "Value.addSync from two children and a thread is exact",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 2 });
    await using threads = new ThreadPool({ maxWorkers: 1 });
    const value = new Value("int32", 0);
    await within(Promise.all([
      pool.submit(work.addSyncTimes, value, 20_000),
      pool.submit(work.addSyncTimes, value, 20_000),
      threads.submit(work.addSyncTimes, value, 20_000),
    ]));
    assert.equal(value.loadSync(), 60_000);
  },
});

Deno.test({
  ...mapped,
  name: "a SharedArray filled by a child with setSync is seen by the parent",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const squares = new SharedArray("float64", 5);
    assert.equal(await within(pool.submit(work.fillSquaresSync, squares)), 5);
    assert.deepEqual(squares.toArraySync(), [0, 1, 4, 9, 16]);
  },
});

Deno.test({
  ...mapped,
  name:
    "an Event set in the parent wakes a child blocked in waitSync; one set by a child wakes the parent",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 2 });
    const toChild = new Event();
    const waiting = pool.submit(work.waitSyncForEvent, toChild, 10_000);
    setTimeout(() => toChild.set(), 100);
    assert.equal(await within(waiting), true);

    const toParent = new Event();
    const woke = toParent.wait({ timeout: 10_000 });
    await within(pool.submit(work.setEvent, toParent));
    assert.equal(await within(woke), true);
  },
});

Deno.test({
  ...mapped,
  name: "in a child, waitSync times out and an aborted wait rejects with the signal's reason",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const event = new Event();
    assert.equal(await within(pool.submit(work.waitSyncForEvent, event, 50)), false);
    assert.equal(await within(pool.submit(work.abortedWait, event, 50)), "TimeoutError");
    assert.equal(event.isSet, false);
  },
});

for (const make of [() => new Mutex(), () => new Semaphore(2)]) {
  const kind = make().constructor.name;
  Deno.test({
    ...mapped,
    name:
      `in a child, waits for a ${kind} and a Queue end at their timeout or signal; both work after`,
    fn: async () => {
      await using pool = new ProcessPool({ maxWorkers: 1 });
      const lock = make();
      const queue = new Queue<string>();
      const held = [lock.acquireSync(), ...(lock instanceof Semaphore ? [lock.acquireSync()] : [])];
      const timedOut = ["TimeoutError", "TimeoutError (signal)", "TimeoutError"];
      assert.deepEqual(await within(pool.submit(work.waitsThatEnd, lock, queue, 50)), [
        ...timedOut,
        ...timedOut,
      ]);
      // The child's calls gave up their waits: the parent's tryAcquire and tryGet see it all free.
      for (const lease of held) lease[Symbol.dispose]();
      const free = lock.tryAcquire();
      assert.ok(free !== undefined);
      free[Symbol.dispose]();
      queue.putSync("item");
      assert.equal(await within(pool.submit(work.takeBoth, lock, queue)), "item");
      assert.equal(queue.size, 0);
    },
  });
}

Deno.test({
  ...mapped,
  name: "a WaitGroup counted down by children releases the parent",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 2 });
    const group = new WaitGroup();
    group.add(2);
    const done = Promise.all([
      pool.submit(work.doneAfter, group, 30),
      pool.submit(work.doneAfter, group, 60),
    ]);
    assert.equal(await group.wait({ timeout: 10_000 }), true);
    await within(done);
  },
});

Deno.test({
  ...mapped,
  name: "a Barrier meets across processes, with waitSync in the children, round after round",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 2 });
    const barrier = new Barrier(3);
    for (let round = 0; round < 3; round++) {
      const children = [pool.submit(work.meet, barrier), pool.submit(work.meet, barrier)];
      const mine = await barrier.wait({ timeout: 10_000 });
      const indexes = [mine, ...await within(Promise.all(children))].sort();
      assert.deepEqual(indexes, [0, 1, 2]);
    }
  },
});

Deno.test({
  ...mapped,
  name: "a child killed waiting at a Barrier breaks it for the others; reset() makes it whole",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const barrier = new Barrier(3);
    const pid = new Value("int32", 0);
    const dying = failure(pool.submit(work.meetUntilKilled, barrier, pid));
    await waitUntil(() => pid.loadSync() !== 0);
    // Far beyond the deadline here: only the child's end can end this wait in time.
    const waiting = failure(barrier.wait({ timeout: 60_000 }));
    await waitUntil(() => barrier.waiting === 2);
    Deno.kill(pid.loadSync(), "SIGKILL");
    assert.equal((await dying).name, "WorkerCrashedError");
    assert.equal((await waiting).name, "BrokenBarrierError");
    assert.equal(barrier.broken, true);
    barrier.reset();
    const indexes = await within(Promise.all([0, 1, 2].map(() => barrier.wait())));
    assert.deepEqual(indexes.sort(), [0, 1, 2]);
  },
});

Deno.test({
  ...mapped,
  name: "a child killed holding a Barrier's lock: the parent releases it, the barrier works",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const barrier = new Barrier(3);
    const pid = new Value("int32", 0);
    await killChild(pool.submit(work.dieHoldingBarrierLock, barrier, pid), pid);
    const indexes = await within(Promise.all([0, 1, 2].map(() => barrier.wait())));
    assert.deepEqual(indexes.sort(), [0, 1, 2]);
  },
});

Deno.test({
  ...mapped,
  name:
    "a child killed inside Condition.wait takes no later notify: a wait nobody notified times out",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const mutex = new Mutex();
    const condition = new Condition(mutex);
    const pid = new Value("int32", 0);
    const dying = failure(pool.submit(work.waitOnConditionUntilKilled, condition, pid));
    await waitUntil(() => pid.loadSync() !== 0);
    // Asleep in the wait once it let go of the lock.
    await waitUntil(() => !mutex.locked);
    Deno.kill(pid.loadSync(), "SIGKILL");
    assert.equal((await dying).name, "WorkerCrashedError");
    {
      using _lock = await condition.acquire({ timeout: 10_000 });
      condition.notify(); // nobody waits any more: nothing to wake
    }
    using _lock = await condition.acquire({ timeout: 10_000 });
    assert.equal(await condition.wait({ timeout: 50 }), false);
  },
});

/** Describes `object` for a child that maps memory: the parent then mends it when a child ends. */
function sendToMappedChild(object: object): void {
  const context = { transport: "process" as const, mapped: true, share: () => ({}) as never };
  (object as unknown as Shareable)[describe](context);
}

/** A pid no process has: a "dead child" whose slots a test fills in by hand. */
const DEAD = 0x7fff_fff0;

Deno.test({
  ...mapped,
  name:
    "a Barrier whose 32 slots are other children's refuses one more process and counts no party",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const barrier = new Barrier(2);
    const words = new Int32Array(sharedMemoryOf(barrier));
    for (let at = 16; at < 80; at += 2) words[at] = DEAD - at; // 32 other children
    const refused = await failure(pool.submit(work.meet, barrier));
    assert.match(
      refused.message,
      /Cannot use this Barrier in one more process: 32 child processes/,
    );
    assert.equal(barrier.waiting, 0);
  },
});

Deno.test({
  ...mapped,
  name: "a dead child's parties leave a Barrier only under its lock, once a live holder lets go",
  fn: async () => {
    const barrier = new Barrier(3);
    sendToMappedChild(barrier);
    const words = new Int32Array(sharedMemoryOf(barrier));
    const lock = words.subarray(0, SHARED_PERMIT_WORDS);
    // A round done (DRAINING, word 12); inside (word 13): the dead child's party and a live one,
    // which holds the lock as it leaves.
    [words[16], words[17], words[13], words[12]] = [DEAD, 1, 2, 1];
    assert.equal(takeFree(lock), true);
    recoverFromEndOf(DEAD);
    assert.equal(words[13], 2, "nothing changed under the live party's hold");
    words[13] = 1; // the live party leaves: not the last out
    releasePermit(lock, 1, 0, false);
    await waitUntil(() => words[13] === 0);
    assert.equal(barrier.broken, false, "the round had completed");
    const indexes = await within(Promise.all([0, 1, 2].map(() => barrier.wait())));
    assert.deepEqual(indexes.sort(), [0, 1, 2]);
  },
});

Deno.test({
  ...mapped,
  name: "a dead child's waits leave a Condition only under its lock: no signal is left over",
  fn: async () => {
    const mutex = new Mutex();
    const condition = new Condition(mutex);
    sendToMappedChild(condition);
    const words = new Int32Array(sharedMemoryOf(condition));
    // The dead child's wait, counted in its slot (words 4, 5) and in WAITING (word 0).
    [words[4], words[5], words[0]] = [DEAD, 1, 1];
    const held = mutex.acquireSync();
    condition.notifyAll(); // under the lock, for the waiter still counted: SIGNALS 1
    recoverFromEndOf(DEAD);
    assert.deepEqual([words[0], words[1]], [1, 1], "nothing changed under this hold");
    held[Symbol.dispose]();
    await waitUntil(() => words[0] === 0);
    assert.equal(words[1], 0, "the dead waiter's signal is gone");
    using _lock = await condition.acquire({ timeout: 10_000 });
    assert.equal(await condition.wait({ timeout: 50 }), false);
  },
});

Deno.test("data posing as a library object is refused, not revived as shared memory", () => {
  const forged = {
    "@parallel/core.descriptor": "Value",
    module: new URL("../processes/value.ts", import.meta.url).href,
    state: { type: "int32", cells: { pid: Deno.pid, fd: 0, fileBytes: 4, offset: 0, bytes: 4 } },
  };
  assert.throws(() => encode([forged], { transport: "thread" }), SerializationError);
});

Deno.test({
  ...mapped,
  name: "a reference to anything but shared memory of this process or its parent maps nothing",
  fn: () => {
    const ref = { pid: Deno.pid, fd: 0, fileBytes: 4096, offset: 0, bytes: 4 };
    assert.throws(() => bufferOf(ref), /shared memory/);
    assert.throws(() => bufferOf({ ...ref, pid: 1 }), /Not a reference/);
    assert.throws(() => bufferOf({ ...ref, offset: 4094 }), /Not a reference/);
  },
});

Deno.test({
  ...mapped,
  name: "futex waits on mapped words: not-equal, timed-out, woken by notify, aborted",
  fn: async () => {
    const words = sharedWords(1);
    assert.equal(waitSync(words, 0, 1, 10), "not-equal");
    assert.equal(waitSync(words, 0, 0, 10), "timed-out");
    assert.equal(await waitAsync(words, 0, 0, 10), "timed-out");
    const woken = waitAsync(words, 0, 0, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 20));
    let count = 0;
    while (count === 0) {
      count = notify(words, 0, 1);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.equal(await woken, "ok");
    const controller = new AbortController();
    const aborted = waitAsync(words, 0, 0, Infinity, controller.signal);
    controller.abort();
    assert.equal(await within(aborted), "aborted");
  },
});

Deno.test({
  ...mapped,
  name: "a Mutex guards a Value across two children and a thread, with acquireSync in each",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 2 });
    await using threads = new ThreadPool({ maxWorkers: 1 });
    const mutex = new Mutex();
    const value = new Value("int32", 0);
    await within(Promise.all([
      pool.submit(work.lockedIncrementsSync, mutex, value, 2_000),
      pool.submit(work.lockedIncrementsSync, mutex, value, 2_000),
      threads.submit(work.lockedIncrementsSync, mutex, value, 2_000),
    ]));
    assert.equal(value.loadSync(), 6_000);
    assert.equal(mutex.locked, false);
  },
});

Deno.test({
  ...mapped,
  name:
    "a Mutex held by a child that exits is released; the next holder, in a child, learns of it once",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const mutex = new Mutex();
    const error = await failure(pool.submit(work.holdAndExit, mutex, 1));
    assert.equal(error.name, "WorkerCrashedError");
    assert.equal(await within(pool.submit(work.acquireSyncAndReport, mutex)), true);
    assert.equal(await within(pool.submit(work.acquireSyncAndReport, mutex)), false);
    assert.equal(mutex.locked, false);
  },
});

Deno.test({
  ...mapped,
  name:
    "a Mutex held by a child killed with SIGKILL is released, and the parent's next lease says so",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const mutex = new Mutex();
    const pid = new Value("int32", 0);
    await killChild(pool.submit(work.holdUntilKilled, mutex, pid), pid, () => {
      assert.equal(mutex.locked, true);
    });
    using lease = await mutex.acquire({ timeout: 10_000 });
    assert.equal(lease.previousOwnerDied, true);
  },
});

Deno.test({
  ...mapped,
  name: "a child killed while waiting for a Mutex leaves no one in line: it is free once released",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const mutex = new Mutex();
    const held = mutex.acquireSync();
    const pid = new Value("int32", 0);
    const waiting = failure(pool.submit(work.waitForMutexUntilKilled, mutex, pid));
    await waitUntil(() => pid.loadSync() !== 0);
    // Asleep outside the line (word 8 counts such waits; COUNT 0: nobody in line).
    const words = new Int32Array(sharedMemoryOf(mutex));
    await waitUntil(() => Atomics.load(words, 8) === 1);
    Deno.kill(pid.loadSync(), "SIGKILL");
    assert.equal((await waiting).name, "WorkerCrashedError");
    held[Symbol.dispose]();
    assert.equal(mutex.locked, false);
    using lease = mutex.tryAcquire();
    assert.ok(lease !== undefined);
  },
});

Deno.test("permits of a Semaphore held by a child that exits all come back, and the next lease says so", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1 });
  const semaphore = new Semaphore(3);
  await within(pool.submit(work.holdAsyncAndExit, semaphore, 2).catch(() => {}));
  const leases = [0, 1, 2].map(() => semaphore.tryAcquire());
  assert.ok(leases.every((lease) => lease !== undefined), "3 permits free again");
  assert.equal(leases[0]!.previousOwnerDied, true);
  assert.equal(semaphore.tryAcquire(), undefined);
});

Deno.test({
  ...mapped,
  name: "a Semaphore's permits held by a child killed with SIGKILL come back (acquireSync there)",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const semaphore = new BoundedSemaphore(3);
    const pid = new Value("int32", 0);
    const holding = failure(pool.submit(work.holdPermitsUntilKilled, semaphore, 2, pid));
    await waitUntil(() => pid.loadSync() !== 0);
    const only = semaphore.tryAcquire();
    assert.ok(only !== undefined);
    assert.equal(semaphore.tryAcquire(), undefined, "the child holds two");
    Deno.kill(pid.loadSync(), "SIGKILL");
    assert.equal((await holding).name, "WorkerCrashedError");
    using first = await semaphore.acquire({ timeout: 10_000 });
    assert.equal(first.previousOwnerDied, true);
    using second = await semaphore.acquire({ timeout: 10_000 });
    assert.equal(second.previousOwnerDied, false);
    assert.equal(semaphore.tryAcquire(), undefined);
    only[Symbol.dispose]();
    // The bound holds: every permit back, one more release fails.
    first[Symbol.dispose]();
    second[Symbol.dispose]();
    assert.throws(() => semaphore.release(), RangeError);
  },
});

Deno.test({
  ...mapped,
  name: "a child waits outside the line for a Semaphore permit; a release in the parent wakes it",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const semaphore = new Semaphore(1);
    const held = semaphore.acquireSync();
    const waiting = pool.submit(work.waitForPermit, semaphore);
    // Waiting outside the line (word 8 counts such waits): it never joins it.
    const words = new Int32Array(sharedMemoryOf(semaphore));
    await waitUntil(() => Atomics.load(words, 8) === 1);
    assert.equal(Atomics.load(words, 0), 0, "nobody in line");
    held[Symbol.dispose]();
    assert.equal(await within(waiting), "waited, then none free");
    assert.ok(semaphore.tryAcquire() !== undefined);
  },
});

Deno.test({
  ...mapped,
  name: "a Semaphore(1) shared by two children and a thread lets one in at a time",
  fn: async () => {
    // One permit: two of the three can run at once on two cores, so a second one inside shows.
    await using pool = new ProcessPool({ maxWorkers: 2 });
    await using threads = new ThreadPool({ maxWorkers: 1 });
    const semaphore = new Semaphore(1);
    const inside = new Value("int32", 0);
    const most = new Value("int32", 0);
    await within(Promise.all([
      pool.submit(work.crowdSync, semaphore, inside, most, 5_000),
      pool.submit(work.crowdSync, semaphore, inside, most, 5_000),
      threads.submit(work.crowdSync, semaphore, inside, most, 5_000),
    ]));
    assert.equal(most.loadSync(), 1, `${most.loadSync()} were inside at once`);
    assert.equal(inside.loadSync(), 0);
    assert.ok(semaphore.tryAcquire() !== undefined);
    assert.equal(semaphore.tryAcquire(), undefined);
  },
});

Deno.test({
  ...mapped,
  name: "a BoundedSemaphore released once too often in a child throws there and stays whole",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const semaphore = new BoundedSemaphore(2);
    assert.equal(
      await within(pool.submit(work.overRelease, semaphore)),
      "Cannot release BoundedSemaphore: all 2 of its permits are already released",
    );
    assert.ok([0, 1].map(() => semaphore.tryAcquire()).every((lease) => lease !== undefined));
    assert.equal(semaphore.tryAcquire(), undefined);
  },
});

Deno.test({
  ...mapped,
  name: "a Condition: a child waits in waitForSync, the parent notifies",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const condition = new Condition();
    const ready = new Value("int32", 0);
    const waiting = pool.submit(work.waitForReady, condition, ready);
    await new Promise((resolve) => setTimeout(resolve, 100));
    {
      using _lock = await condition.acquire({ timeout: 10_000 });
      ready.storeSync(1);
      condition.notifyAll();
    }
    assert.equal(await within(waiting), 1);
  },
});

Deno.test({
  ...mapped,
  name: "objects a mapped child was given go back to the parent as the same objects",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const event = new Event();
    const mutex = new Mutex();
    const value = new Value("float64", 1.5);
    const sent = { event, mutex, value, lock: value.lock };
    const back = await within(pool.submit(work.returnIt, sent)) as typeof sent;
    assert.equal(back.event, event);
    assert.equal(back.mutex, mutex);
    assert.equal(back.value, value);
    assert.equal(back.lock, value.lock);
  },
});

Deno.test("a float Value's guard left held (its holder killed mid-write) is taken after a second", () => {
  const value = new Value("float64", 2.5);
  const state = value[describe]({ transport: "thread" }).state as { guard: SharedRef };
  Atomics.store(new Int32Array(bufferOf(state.guard)), 0, 1);
  assert.equal(value.loadSync(), 2.5);
  value.storeSync(3.5);
  assert.equal(value.loadSync(), 3.5);
});

Deno.test({
  ...mapped,
  name: "async futex waits of one thread on one word are woken oldest first, one per notify",
  fn: async () => {
    const words = sharedWords(1);
    const order: number[] = [];
    const waits = Array.from(
      { length: 5 },
      (_, i) => waitAsync(words, 0, 0, 10_000).then((reason) => order.push(i) && reason),
    );
    for (let woken = 1; woken <= 5; woken++) {
      // Until the line's futex call sleeps and takes this wake-up, then until it is delivered.
      await waitUntil(() => notify(words, 0, 1) > 0);
      await waitUntil(() => order.length >= woken);
      await new Promise((resolve) => setTimeout(resolve, 5));
      assert.equal(order.length, woken, "one notify woke more than one wait");
    }
    assert.deepEqual(order, [0, 1, 2, 3, 4]);
    assert.deepEqual(await within(Promise.all(waits)), Array(5).fill("ok"));
  },
});

Deno.test("a queue's ring lives in memory of this program's kind; a process gets it by the broker", () => {
  const queue = new PriorityQueue<number>();
  const { header, data, index } = queueRing(queue).state;
  for (const buffer of [header, data, index!]) {
    assert.equal(isMapped(buffer), canMap);
    assert.equal(buffer instanceof SharedArrayBuffer, !canMap);
  }
  // Without a broker, a process cannot have it; a thread can.
  assert.throws(() => encode([queue], { transport: "process" }), SerializationError);
  encode([queue], { transport: "thread" });
});

Deno.test({
  ...mapped,
  name: "a mapped queue takes memory only as its ring is used: nothing fills the whole mapping",
  fn: () => {
    const before = Deno.memoryUsage().rss;
    // Each is mapped at its largest (64 MiB of data; 96 MiB of index for an ordered one):
    // touching it all would take gigabytes.
    const queues = Array.from({ length: 16 }, (_, i) => i % 2 ? new Queue() : new PriorityQueue());
    for (const queue of queues) {
      for (let i = 0; i < 100; i++) queue.putSync("x".repeat(1_000));
      for (let i = 0; i < 100; i++) queue.getSync();
    }
    assert.ok(Deno.memoryUsage().rss - before < 256 * 1024 * 1024, "the mappings were touched");
    // The ring grew by its CAPACITY word, not by growing its buffer.
    const ring = queueRing(queues[1]);
    assert.equal(ring.state.data.byteLength, Queue.MAX_BYTES);
    assert.equal(ring.capacity, 128 * 1024);
  },
});

Deno.test({
  ...mapped,
  name: "a Queue passed to a child with FFI is used directly: in order, exactly once",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    await using threads = new ThreadPool({ maxWorkers: 1 });
    const input = new Queue<number>();
    const output = new Queue<number>();
    const middle = new Queue<number>();
    const child = pool.submit(work.queueEcho, input, middle, 200);
    const thread = threads.submit(work.queueEcho, middle, output, 200);
    for (let i = 0; i < 200; i++) input.putSync(i);
    assert.equal(await within(child), "direct");
    assert.equal(await within(thread), "direct");
    const got = Array.from({ length: 200 }, () => output.getSync({ timeout: 10_000 }));
    assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => 4 * i));
    assert.equal(output.size + middle.size + input.size, 0);
  },
});

Deno.test({
  ...mapped,
  name: "a child's getSync and putSync wait for items and places of bounded queues",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const input = new Queue<number>({ maxSize: 4 });
    const output = new Queue<number>({ maxSize: 2 });
    const relayed = pool.submit(work.relaySync, input, output, 300);
    const got: number[] = [];
    const reading = (async () => {
      // Slower than the child: its putSync waits for places.
      while (got.length < 300) {
        got.push(await output.get({ timeout: 10_000 }));
        if (got.length % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    for (let i = 0; i < 300; i++) {
      await input.put(i, { timeout: 10_000 });
      // And its getSync for items.
      if (i % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await within(reading);
    assert.deepEqual(got, Array.from({ length: 300 }, (_, i) => 2 * i));
    assert.deepEqual(await within(relayed), { left: undefined, size: 0 });
    assert.equal(input.tryPut(1) && input.tryPut(2) && input.tryPut(3) && input.tryPut(4), true);
    assert.equal(input.tryPut(5), false);
  },
});

Deno.test({
  ...mapped,
  name: "two children and a thread share a JoinableQueue's items exactly once; join ends",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 2 });
    await using threads = new ThreadPool({ maxWorkers: 1 });
    const queue = new JoinableQueue<number>({ maxSize: 16 });
    const consumers = [
      pool.submit(work.consume, queue),
      pool.submit(work.consume, queue),
      threads.submit(work.consume, queue),
    ];
    for (let i = 0; i < 2_000; i++) await queue.put(i, { timeout: 10_000 });
    await queue.join({ timeout: 10_000 });
    assert.equal(queue.unfinished, 0);
    queue.close();
    const got = (await within(Promise.all(consumers))).flat().sort((a, b) => a - b);
    assert.deepEqual(got, Array.from({ length: 2_000 }, (_, i) => i));
  },
});

Deno.test({
  ...mapped,
  name: "a pipe end in a child with FFI is used directly: pollSync, recvSync and sendSync there",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const [here, there] = pipe<number>();
    const child = pool.submit(work.runningTotalSync, there);
    const sums = [];
    for (const n of [1, 2, 3]) {
      await here.send(n);
      assert.equal(await here.poll(10_000), true);
      sums.push(await here.recv({ timeout: 10_000 }));
    }
    assert.deepEqual(sums, [1, 3, 6]);
    here.close();
    // Closed: a poll answers at once, since a recv would (with QueueClosedError).
    assert.deepEqual(await within(child), { total: 6, polled: true });
  },
});

Deno.test({
  ...mapped,
  name: "a LifoQueue and a PriorityQueue in a child with FFI are used directly, in their order",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const lifo = new LifoQueue<string>();
    const byPriority = new PriorityQueue<string>();
    for (const item of ["a", "b", "c"]) lifo.putSync(item);
    for (const [item, priority] of [["x", 3], ["y", 1], ["z", 2]] as const) {
      byPriority.putSync(item, { priority });
    }
    const back: [string, number][] = [["low", 9], ["high", -1], ["mid", 4]];
    assert.deepEqual(await within(pool.submit(work.drainThenPut, lifo, back)), ["c", "b", "a"]);
    assert.deepEqual(await within(pool.submit(work.drainThenPut, byPriority, back)), [
      "y",
      "z",
      "x",
    ]);
    assert.deepEqual([0, 1, 2].map(() => lifo.getSync()), ["mid", "high", "low"]);
    assert.deepEqual([0, 1, 2].map(() => byPriority.getSync()), ["high", "mid", "low"]);
  },
});

/** A PriorityQueue of 64 items (priorities 0–63, put in a scrambled order). */
function sixtyFour(): PriorityQueue<string> {
  const queue = new PriorityQueue<string>();
  for (let i = 0; i < 64; i++) {
    const priority = (i * 37) % 64;
    queue.putSync(`p${priority}`, { priority });
  }
  return queue;
}

for (
  const [what, call, priority] of [
    ["a get", "get", 0],
    ["a put", "put", -1],
  ] as const
) {
  Deno.test({
    ...mapped,
    name: `a child killed in the middle of ${what}'s heap moves: the PriorityQueue is as before it`,
    fn: async () => {
      await using pool = new ProcessPool({ maxWorkers: 1 });
      const queue = sixtyFour();
      const pid = new Value("int32", 0);
      await killChild(pool.submit(work.dieInHeap, queue, call, priority, 3, pid), pid);
      await waitUntil(() => queueRing(queue).lockHolder === 0);
      const drained: string[] = [];
      for (let item = queue.tryGet(); item !== undefined; item = queue.tryGet()) {
        drained.push(item.value);
      }
      // Every item once, in order: the change the child died in never happened.
      assert.deepEqual(drained, Array.from({ length: 64 }, (_, i) => `p${i}`));
    },
  });
}

Deno.test({
  ...mapped,
  name: "a child killed after marking a frame taken out of order, before noting it: the item stays",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const queue = new PriorityQueue<string>();
    queue.putSync("later", { priority: 5 });
    queue.putSync("first", { priority: 1 }); // neither the oldest frame nor the newest
    queue.putSync("last", { priority: 9 });
    const pid = new Value("int32", 0);
    await killChild(pool.submit(work.dieBeforeNoting, queue, pid), pid);
    await waitUntil(() => queueRing(queue).lockHolder === 0);
    assert.deepEqual([queue.tryGet(), queue.tryGet(), queue.tryGet(), queue.tryGet()], [
      { value: "first" },
      { value: "later" },
      { value: "last" },
      undefined,
    ]);
  },
});

/** Runs `dieInQueueCall` in a child, kills the child where it stopped, waits for the lock. */
async function killInQueueCall(
  queue: Queue<string>,
  call: "get" | "put",
  when: "claimed" | "noted" | "took",
): Promise<void> {
  await using pool = new ProcessPool({ maxWorkers: 1 });
  const pid = new Value("int32", 0);
  await killChild(pool.submit(work.dieInQueueCall, queue, call, when, pid), pid, () => {
    assert.equal(queueRing(queue).lockHolder, pid.loadSync());
  });
  // The parent frees the lock of the dead child (before that, a get here would block on it).
  await waitUntil(() => queueRing(queue).lockHolder === 0);
}

Deno.test({
  ...mapped,
  name: "a child killed holding a queue's lock after claiming an item: the item stays, once",
  fn: async () => {
    const queue = new Queue<string>();
    queue.putSync("a");
    await killInQueueCall(queue, "get", "claimed");
    assert.deepEqual(queue.tryGet(), { value: "a" });
    assert.equal(queue.tryGet(), undefined);
  },
});

Deno.test({
  ...mapped,
  name: "a child killed between noting a put and applying it: the parent finishes the put",
  fn: async () => {
    const queue = new Queue<string>();
    await killInQueueCall(queue, "put", "noted");
    assert.deepEqual(queue.tryGet(), { value: "b" });
    assert.equal(queue.tryGet(), undefined);
    queue.putSync("c");
    assert.deepEqual(queue.getSync({ timeout: 1_000 }), "c");
  },
});

Deno.test({
  ...mapped,
  name: "a child killed between noting a get and applying it: its item is gone, the rest stay",
  fn: async () => {
    const queue = new Queue<string>();
    queue.putSync("x");
    queue.putSync("y");
    await killInQueueCall(queue, "get", "noted");
    assert.deepEqual(queue.tryGet(), { value: "y" });
    assert.equal(queue.tryGet(), undefined);
  },
});

Deno.test({
  ...mapped,
  name: "a child killed after taking an item of a full queue: its place comes back",
  fn: async () => {
    const queue = new Queue<string>({ maxSize: 1 });
    queue.putSync("x");
    await killInQueueCall(queue, "get", "took");
    assert.equal(queue.tryGet(), undefined);
    assert.equal(queue.tryPut("y"), true);
    assert.equal(queue.tryPut("z"), false);
  },
});

Deno.test({
  ...mapped,
  name: "a parent blocked on a queue's lock a killed child held frees it itself",
  fn: async () => {
    // The parent's event loop, which learns of the child's end, cannot run while putSync waits:
    // the wait looks at the holder itself.
    const tasksUrl = new URL("./_mapped_tasks.ts", import.meta.url).href;
    const { code, stdout, stderr } = await runProgram(`
      import { ProcessPool, Queue, tasks, Value } from "@parallel/core";
      const work = tasks(new URL(${JSON.stringify(tasksUrl)}));
      const pool = new ProcessPool({ maxWorkers: 1 });
      const queue = new Queue();
      queue.putSync("a");
      const pid = new Value("int32", 0);
      const dying = pool.submit(work.dieInQueueCall, queue, "get", "claimed", pid)
        .catch((error) => error.name);
      while (pid.loadSync() === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      Deno.kill(pid.loadSync(), "SIGKILL");
      queue.putSync("b");
      console.log(JSON.stringify([queue.tryGet(), queue.tryGet(), await dying]));
      await pool.shutdown();
    `);
    assert.equal(code, 0, stderr);
    assert.equal(stdout.trim(), '[{"value":"a"},{"value":"b"},"WorkerCrashedError"]');
  },
});

Deno.test({
  ...mapped,
  name: "a child killed while waiting for an item leaves no one in line: tryGet finds the next",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const queue = new Queue<string>();
    const pid = new Value("int32", 0);
    const ring = queueRing(queue);
    await killChild(pool.submit(work.getUntilKilled, queue, pid), pid, async () => {
      // Killed once asleep waiting for an item (word 8 counts a child's waits, outside the line).
      await waitUntil(() => Atomics.load(ring.itemWords, 8) === 1);
    });
    queue.putSync("p");
    assert.deepEqual(queue.tryGet(), { value: "p" });
  },
});

Deno.test({
  ...mapped,
  name: "a get aborted in this process after its item was granted wakes a child waiting for one",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const queue = new Queue<string>();
    const ring = queueRing(queue);
    const controller = new AbortController();
    const aborted = failure(queue.get({ signal: controller.signal }));
    await waitUntil(() => Atomics.load(ring.itemWords, 0) === -1); // in line
    // Its timeout is far beyond the deadline here: only a wake-up gets it the item in time.
    const child = pool.submit(work.getWithin, queue, 60_000);
    // The child waits outside the line, after this process's get.
    await waitUntil(() => Atomics.load(ring.itemWords, 8) === 1);
    queue.putSync("x"); // granted to the get in line: the child looks and finds none
    // Blocking the event loop a while, so that the child has looked and gone back to sleep before
    // the get sees its grant; then the abort: the grant goes back as a free permit.
    const until = performance.now() + 300;
    while (performance.now() < until);
    controller.abort();
    assert.equal((await aborted).name, "AbortError");
    assert.equal(await within(child), "x");
  },
});

Deno.test({
  ...mapped,
  name: "a child killed as it gives an item to a get waiting in line: the get still gets it",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const queue = new Queue<string>();
    const ring = queueRing(queue);
    const waiting = queue.get({ timeout: 10_000 });
    await waitUntil(() => Atomics.load(ring.itemWords, 0) === -1); // in line
    const pid = new Value("int32", 0);
    await killChild(pool.submit(work.dieGivingToTheLine, queue, pid), pid);
    assert.equal(await within(waiting), "b");
    // The permit may have been given twice: the spare is dropped, nothing else comes out.
    assert.equal(queue.tryGet(), undefined);
    queue.putSync("c");
    assert.deepEqual(queue.tryGet(), { value: "c" });
  },
});

Deno.test({
  ...mapped,
  name: "a child killed in taskDone before it woke join: join still ends",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const queue = new JoinableQueue<string>();
    queue.putSync("a");
    const joined = queue.join({ timeout: 10_000 });
    const pid = new Value("int32", 0);
    await killChild(pool.submit(work.dieInTaskDone, queue, pid), pid, () => {
      assert.equal(queue.unfinished, 0);
    });
    await within(joined, 5_000);
  },
});

for (
  const [what, poke, call] of [
    ["a capacity of 0, then putSync", "ring.header[7] = 0;", "queue.putSync(1);"],
    ["a capacity of -1, then putSync", "ring.header[7] = -1;", "queue.putSync(1);"],
    [
      "a dead frame of size 0, then getSync",
      "new Int32Array(ring.state.data)[1] = 9;",
      "queue.getSync();",
    ],
    ["an ITEMS count of -2^31, then close()", "ring.itemWords[0] = -(2 ** 31);", "queue.close();"],
  ]
) {
  Deno.test({
    ...mapped,
    name: `a queue whose memory a child overwrote (${what}) throws or goes on; it never spins`,
    fn: async () => {
      const ringModule = new URL("../queue/queue.ts", import.meta.url).href;
      const { code, stdout, stderr } = await runProgram(
        `
        import { Queue } from "@parallel/core";
        import { queueRing } from ${JSON.stringify(ringModule)};
        const queue = new Queue();
        for (const item of [1, 2]) queue.putSync(item);
        queue.getSync();
        queue.getSync();
        // Two items from the ring's start: the frames at bytes 0 and 4.
        for (const item of [1, 2]) queue.putSync(item);
        const ring = queueRing(queue);
        ${poke}
        try {
          ${call}
        } catch (error) {
          console.log(error.message);
        }
        console.log("returned");
      `,
        10_000,
      );
      assert.equal(code, 0, stderr);
      assert.match(stdout, /returned/);
    },
  });
}

Deno.test({
  ...mapped,
  name: "children killed at any moment of puts and gets leave a bounded queue whole",
  fn: async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    const queue = new Queue<string>({ maxSize: 2 });
    for (let round = 0; round < 6; round++) {
      const pid = new Value("int32", 0);
      await killChild(pool.submit(work.churnUntilKilled, queue, pid), pid, async () => {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 30));
      });
      await waitUntil(() => queueRing(queue).lockHolder === 0);
    }
    // At most one item the last child put and did not get back.
    while (queue.tryGet() !== undefined);
    assert.equal(queue.size, 0);
    assert.equal(queue.tryPut("1") && queue.tryPut("2"), true, "both places are free");
    assert.equal(queue.tryPut("3"), false);
    assert.deepEqual([queue.tryGet(), queue.tryGet(), queue.tryGet()], [
      { value: "1" },
      { value: "2" },
      undefined,
    ]);
  },
});

Deno.test({
  ...mapped,
  name: "a child's lock released by the parent and taken again is not released when the child ends",
  fn: async () => {
    const pool = new ProcessPool({ maxWorkers: 1 });
    const mutex = new Mutex();
    try {
      await within(pool.submit(work.lockAndReturn, mutex));
      assert.equal(mutex.locked, true);
      mutex.release();
      using lease = mutex.tryAcquire()!;
      await within(pool.shutdown());
      assert.equal(mutex.locked, true, "the parent's own hold survives the child's end");
      assert.equal(lease.previousOwnerDied, false);
    } finally {
      await pool.shutdown();
    }
  },
});
