import assert from "node:assert/strict";
import { BrokenBarrierError, tasks, Thread } from "../mod.ts";
import { Barrier, Condition, Mutex, ReentrantMutex } from "../sync/mod.ts";
import { sharedFlags, within } from "./_helpers.ts";

const work = tasks<typeof import("./_sync_tasks.ts")>(
  new URL("./_sync_tasks.ts", import.meta.url),
);

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `words[index] >= value`, for at most 10 s. */
async function reaches(words: Int32Array, index: number, value: number): Promise<void> {
  const end = Date.now() + 10_000;
  while (Atomics.load(words, index) < value) {
    if (Date.now() > end) throw new Error(`word ${index} did not reach ${value}`);
    await delay(2);
  }
}

Deno.test("Condition: a producer thread and a consumer thread pass 500 items through 4 slots", async () => {
  const condition = new Condition();
  const buffer = sharedFlags(5); // count, then 4 slots
  const producer = new Thread({ target: work.produce, args: [condition, buffer, 500] }).start();
  const consumer = new Thread({ target: work.consume, args: [condition, buffer, 500] }).start();
  const [, items] = await within(Promise.all([producer.join(), consumer.join()]), 20_000);
  assert.deepEqual(items, Array.from({ length: 500 }, (_, i) => i + 1));
  assert.equal(buffer[0], 0);
});

Deno.test("Condition: the main thread consumes with await waitFor while a thread produces", async () => {
  const condition = new Condition(new ReentrantMutex());
  const buffer = sharedFlags(3);
  const producer = new Thread({ target: work.produce, args: [condition, buffer, 200] }).start();
  const items: number[] = [];
  while (items.length < 200) {
    using _outer = await condition.acquire();
    using _inner = await condition.acquire(); // wait() releases both levels
    assert.ok(await within(condition.waitFor(() => buffer[0] > 0, { timeout: 10_000 })));
    items.push(buffer[1]);
    buffer.copyWithin(1, 2, 1 + buffer[0]);
    buffer[0] -= 1;
    condition.notifyAll();
  }
  await within(producer.join());
  assert.deepEqual(items, Array.from({ length: 200 }, (_, i) => i + 1));
});

Deno.test("Condition: notify(n) wakes at most n waiters; timeouts resolve false", async () => {
  const condition = new Condition();
  const flags = sharedFlags(3); // waiting, ready, go
  // They go to sleep together once all three have started: a thread that starts late must not
  // leave the others' 400 ms to run out before the notify.
  const waiters = [1, 2, 3].map(() =>
    new Thread({ target: work.conditionWaitOnGo, args: [condition, flags, 400] }).start()
  );
  await reaches(flags, 1, 3);
  Atomics.store(flags, 2, 1);
  Atomics.notify(flags, 2);
  await reaches(flags, 0, 3);
  await delay(20); // all three have let go of the lock and sleep
  {
    using _lock = await condition.acquire();
    condition.notify(2);
  }
  const woken = await within(Promise.all(waiters.map((thread) => thread.join())));
  assert.deepEqual(woken.sort(), [false, true, true]);
  using _lock = condition.acquireSync();
  assert.equal(await condition.wait({ timeout: 10 }), false);
  assert.equal(condition.waitSync({ timeout: 0 }), false);
  assert.equal(condition.tryAcquire(), undefined, "wait() took the lock back");
});

Deno.test("Condition: wait and notify need the lock; an aborted wait takes the lock back", async () => {
  const condition = new Condition(new Mutex());
  await assert.rejects(condition.wait(), {
    name: "Error",
    message: "Cannot wait on Condition: its Mutex is not locked; acquire it first",
  });
  assert.throws(() => condition.notify(), /Cannot notify Condition: its Mutex is not locked/);
  assert.throws(() => condition.notifyAll(), /Cannot notify Condition/);
  assert.throws(() => new Condition({} as Mutex), {
    name: "TypeError",
    message: /^Cannot create Condition: 'mutex' must be a Mutex or a ReentrantMutex/,
  });
  const reentrant = new Condition(new ReentrantMutex());
  assert.throws(
    () => reentrant.waitSync(),
    /Cannot wait on Condition: its ReentrantMutex is not held by this thread/,
  );
  using _lock = await condition.acquire();
  assert.throws(() => condition.notify(-1), {
    name: "RangeError",
    message: "Cannot notify Condition: 'n' must be a whole number >= 0: current value is -1",
  });
  const controller = new AbortController();
  const waiting = condition.wait({ signal: controller.signal });
  await delay(5);
  assert.ok(condition.tryAcquire(), "wait() lets go of the lock while it sleeps");
  condition.release();
  controller.abort();
  await assert.rejects(waiting, { name: "AbortError" });
  assert.equal(condition.tryAcquire(), undefined, "the aborted wait took the lock back");
  condition.notify(); // nobody waits: nothing happens
});

Deno.test("Barrier(3) hands out 0, 1 and 2, round after round, to threads and the main thread", async () => {
  const barrier = new Barrier(3);
  assert.equal(barrier.parties, 3);
  const threads = [1, 2].map(() =>
    new Thread({ target: work.barrierRounds, args: [barrier, 3] }).start()
  );
  const mine: number[] = [];
  for (let round = 0; round < 3; round++) {
    mine.push(await within(barrier.wait({ timeout: 10_000 })));
  }
  const [a, b] = await within(Promise.all(threads.map((thread) => thread.join())));
  for (let round = 0; round < 3; round++) {
    assert.deepEqual([a[round], b[round], mine[round]].sort(), [0, 1, 2]);
  }
  assert.equal(barrier.waiting, 0);
  assert.equal(barrier.broken, false);
});

Deno.test("Barrier: a timeout breaks it for every waiter until reset()", async () => {
  const barrier = new Barrier(3);
  const patient = new Thread({ target: work.barrierFailure, args: [barrier, 10_000] }).start();
  const hasty = new Thread({ target: work.barrierFailure, args: [barrier, 50] }).start();
  assert.deepEqual(await within(Promise.all([patient.join(), hasty.join()])), [
    "BrokenBarrierError",
    "BrokenBarrierError",
  ]);
  assert.equal(barrier.broken, true);
  await assert.rejects(barrier.wait(), (error: unknown) => {
    assert.ok(error instanceof BrokenBarrierError);
    assert.equal(error.message, "Cannot wait on Barrier: it is broken; reset() it first");
    return true;
  });
  barrier.reset();
  assert.equal(barrier.broken, false);
  const one = new Barrier(1);
  assert.equal(one.waitSync(), 0);
  assert.equal(await one.wait({ timeout: 0 }), 0);
});

Deno.test("Barrier: abort(), reset() with waiters, and an aborted signal break it", async () => {
  const barrier = new Barrier(2);
  const waiting = barrier.wait({ timeout: 10_000 });
  await delay(5);
  assert.equal(barrier.waiting, 1);
  barrier.abort();
  await assert.rejects(waiting, BrokenBarrierError);
  barrier.reset();

  const resetWhileWaiting = barrier.wait({ timeout: 10_000 });
  await delay(5);
  barrier.reset();
  await assert.rejects(resetWhileWaiting, BrokenBarrierError);
  assert.equal(barrier.broken, false);

  const controller = new AbortController();
  const reason = new Error("giving up");
  const aborted = barrier.wait({ signal: controller.signal });
  const other = new Thread({ target: work.barrierFailure, args: [barrier, 10_000] });
  await delay(5);
  controller.abort(reason);
  await assert.rejects(aborted, (error) => error === reason);
  other.start();
  assert.equal(await within(other.join()), "BrokenBarrierError");
  barrier.reset();
  const pair = await within(Promise.all([barrier.wait(), barrier.wait()]));
  assert.deepEqual(pair.sort(), [0, 1]);
});

Deno.test("Barrier: bad parties are refused with the value", () => {
  assert.throws(() => new Barrier(0), {
    name: "RangeError",
    message: "Cannot create Barrier: 'parties' must be a whole number >= 1: current value is 0",
  });
  assert.throws(() => new Barrier(-2), /current value is -2/);
  assert.throws(() => new Barrier(NaN), /current value is NaN/);
  assert.throws(() => new Barrier(undefined as unknown as number), TypeError);
  assert.equal(new Barrier(2).parties, 2);
});

Deno.test("Condition.waitFor resolves to the predicate's last value, as Python's wait_for", async () => {
  const condition = new Condition();
  const flags = sharedFlags(1);
  setTimeout(() => {
    using _lock = condition.acquireSync();
    flags[0] = 7;
    condition.notifyAll();
  }, 10);
  using _lock = await condition.acquire();
  const found = await within(
    condition.waitFor(() => flags[0] > 0 && { item: flags[0] }, { timeout: 10_000 }),
  );
  assert.deepEqual(found, { item: 7 });
  assert.equal(condition.waitForSync(() => flags[0] === 0 && "never", { timeout: 0 }), false);
  assert.equal(condition.waitForSync(() => flags[0] || 0, { timeout: 0 }), 7);
});
