import assert from "node:assert/strict";
import { tasks, Thread, TimeoutError } from "../mod.ts";
import { Mutex, ReentrantMutex } from "../sync/mod.ts";
import { flagSet, sharedFlags, within } from "./_helpers.ts";

const work = tasks<typeof import("./_sync_tasks.ts")>(
  new URL("./_sync_tasks.ts", import.meta.url),
);

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("Mutex: two threads x 100,000 locked increments of a plain counter are exact", async () => {
  const mutex = new Mutex();
  const counter = sharedFlags(1);
  const threads = [1, 2].map(() =>
    new Thread({ target: work.lockedIncrements, args: [mutex, counter, 100_000] }).start()
  );
  await within(Promise.all(threads.map((thread) => thread.join())), 20_000);
  assert.equal(counter[0], 200_000);
  assert.equal(mutex.locked, false);
});

Deno.test("ReentrantMutex: two threads x 20,000 locked increments are exact", async () => {
  const mutex = new ReentrantMutex();
  const counter = sharedFlags(1);
  const threads = [1, 2].map(() =>
    new Thread({ target: work.lockedIncrements, args: [mutex, counter, 20_000] }).start()
  );
  await within(Promise.all(threads.map((thread) => thread.join())), 20_000);
  assert.equal(counter[0], 40_000);
  assert.equal(mutex.locked, false);
});

Deno.test("Mutex: main-thread async acquires and thread blocking acquires exclude each other", async () => {
  const mutex = new Mutex();
  const inside = sharedFlags(4); // holders now, overlaps seen, entries, stop
  const threads = [1, 2].map(() =>
    new Thread({ target: work.exclusiveEntries, args: [mutex, inside] }).start()
  );
  try {
    await flagSet(inside, 2); // the threads are taking turns
    const entriesBefore = Atomics.load(inside, 2);
    for (let i = 0; i < 200; i++) {
      using _lock = await within(mutex.acquire({ timeout: 10_000 }));
      if (Atomics.add(inside, 0, 1) !== 0) Atomics.add(inside, 1, 1);
      if (i % 10 === 0) await delay(0); // hold it across a turn of the event loop
      Atomics.sub(inside, 0, 1);
      Atomics.add(inside, 2, 1);
    }
    assert.ok(Atomics.load(inside, 2) - entriesBefore > 200, "the threads did not run meanwhile");
  } finally {
    Atomics.store(inside, 3, 1);
  }
  const entries = await within(Promise.all(threads.map((thread) => thread.join())));
  assert.equal(inside[1], 0, "two holders were inside at once");
  assert.equal(inside[2], entries[0] + entries[1] + 200);
});

Deno.test("Mutex: the main thread's timers keep firing while it awaits acquire", async () => {
  const mutex = new Mutex();
  const flags = sharedFlags(2); // held, let go
  const holder = new Thread({ target: work.holdUntilTold, args: [mutex, flags] }).start();
  await flagSet(flags, 0);
  let ticks = 0;
  // The holder lets go once 10 ticks have fired while acquire waits (not after a fixed time,
  // which a loaded machine may fill with fewer ticks).
  const ticker = setInterval(() => {
    if (++ticks === 10) {
      Atomics.store(flags, 1, 1);
      Atomics.notify(flags, 1);
    }
  }, 10);
  try {
    const lease = await within(mutex.acquire());
    assert.ok(ticks >= 10, `only ${ticks} ticks while waiting`);
    lease[Symbol.dispose]();
  } finally {
    clearInterval(ticker);
  }
  await within(holder.join());
});

Deno.test("Mutex: sleeping waiters are served in the order they came", async () => {
  const mutex = new Mutex();
  const order: number[] = [];
  const first = mutex.tryAcquire()!;
  const waiters = [0, 1, 2, 3, 4].map(async (i) => {
    using _lock = await mutex.acquire({ timeout: 5_000 });
    order.push(i);
    await delay(1);
  });
  await delay(10);
  first[Symbol.dispose]();
  await within(Promise.all(waiters));
  assert.deepEqual(order, [0, 1, 2, 3, 4]);
});

Deno.test("Mutex: a thread looping on the lock does not starve main-thread waiters", async () => {
  const mutex = new Mutex();
  const inside = sharedFlags(4);
  const looper = new Thread({ target: work.exclusiveEntries, args: [mutex, inside] }).start();
  try {
    await flagSet(inside, 2);
    for (let i = 0; i < 20; i++) {
      using _lock = await within(mutex.acquire({ timeout: 2_000 }));
    }
  } finally {
    Atomics.store(inside, 3, 1);
  }
  assert.ok(await within(looper.join()) > 0);
  assert.equal(inside[1], 0);
});

Deno.test("Mutex: timeouts and aborts racing with hand-offs leave it consistent", async () => {
  const mutex = new Mutex();
  const inside = sharedFlags(4);
  const looper = new Thread({ target: work.exclusiveEntries, args: [mutex, inside] }).start();
  const timed = [1, 2].map(() =>
    new Thread({ target: work.timedEntries, args: [mutex, inside, 3_000] }).start()
  );
  try {
    await flagSet(inside, 2);
    const attempts = Array.from({ length: 300 }, async (_, i) => {
      const options = i % 2 === 0 ? { timeout: i % 7 } : { signal: AbortSignal.timeout(i % 5) };
      try {
        using _lock = await mutex.acquire(options);
        if (Atomics.add(inside, 0, 1) !== 0) Atomics.add(inside, 1, 1);
        Atomics.sub(inside, 0, 1);
        return "acquired";
      } catch (error) {
        return (error as Error).name;
      }
    });
    const outcomes = new Set(await within(Promise.all(attempts), 20_000));
    for (const outcome of outcomes) {
      assert.ok(["acquired", "TimeoutError"].includes(outcome), outcome);
    }
    await within(Promise.all(timed.map((thread) => thread.join())), 20_000);
  } finally {
    Atomics.store(inside, 3, 1);
  }
  await within(looper.join());
  assert.equal(inside[1], 0, "two holders were inside at once");
  assert.equal(mutex.locked, false);
  using _lock = mutex.tryAcquire();
  assert.ok(_lock, "the mutex is free and takeable");
});

Deno.test("Mutex: acquire times out with TimeoutError, in the main thread and in a thread", async () => {
  const mutex = new Mutex();
  const lease = mutex.tryAcquire()!;
  const started = performance.now();
  await assert.rejects(mutex.acquire({ timeout: 50 }), (error: unknown) => {
    assert.ok(error instanceof TimeoutError);
    assert.match(error.message, /Mutex\.acquire\(\) timed out after 50 ms/);
    return true;
  });
  assert.ok(performance.now() - started >= 45);
  await assert.rejects(mutex.acquire({ timeout: 0 }), TimeoutError);
  assert.throws(() => mutex.acquireSync({ timeout: 0 }), TimeoutError);
  const inThread = new Thread({ target: work.acquireSyncWithin, args: [mutex, 50] }).start();
  assert.equal(await within(inThread.join()), "TimeoutError");
  lease[Symbol.dispose]();
  // The mutex still works after the timeouts.
  using _lock = await within(mutex.acquire({ timeout: 1_000 }));
  assert.equal(mutex.locked, true);
});

Deno.test("Mutex: an aborted acquire rejects with the signal's reason and leaves the lock usable", async () => {
  const mutex = new Mutex();
  const lease = mutex.tryAcquire()!;
  const controller = new AbortController();
  const aborted = mutex.acquire({ signal: controller.signal });
  const next = mutex.acquire({ timeout: 5_000 });
  setTimeout(() => controller.abort(), 10);
  await assert.rejects(aborted, (error: unknown) => {
    assert.ok(error instanceof DOMException);
    assert.equal(error.name, "AbortError");
    return true;
  });
  const reason = new Error("stop");
  await assert.rejects(mutex.acquire({ signal: AbortSignal.abort(reason) }), (e) => e === reason);
  assert.throws(
    () => mutex.acquireSync({ signal: AbortSignal.abort(reason) }),
    (e) => e === reason,
  );
  lease[Symbol.dispose]();
  using _lock = await within(next);
  assert.equal(mutex.locked, true);
});

Deno.test("Mutex: a lease releases once; releasing an unlocked mutex throws and changes nothing", async () => {
  const mutex = new Mutex();
  const lease = await mutex.acquire();
  lease[Symbol.dispose]();
  lease[Symbol.dispose]();
  assert.equal(mutex.locked, false);
  assert.throws(() => mutex.release(), {
    name: "Error",
    message: "Cannot release Mutex: it is not locked",
  });
  {
    using _lock = mutex.acquireSync();
    assert.equal(mutex.tryAcquire(), undefined);
  }
  assert.equal(mutex.locked, false);
  for (let i = 0; i < 3; i++) {
    using _lock = i % 2 ? await mutex.acquire() : mutex.acquireSync();
    assert.equal(mutex.locked, true);
  }
  assert.equal(mutex.locked, false);
  assert.ok(mutex.tryAcquire());
  mutex.release();
});

Deno.test("Mutex: bad timeouts are refused with the value", async () => {
  const mutex = new Mutex();
  await assert.rejects(mutex.acquire({ timeout: -1 }), {
    name: "RangeError",
    message:
      "Cannot acquire Mutex: 'timeout' must be a number of milliseconds >= 0: current value is -1",
  });
  await assert.rejects(mutex.acquire({ timeout: NaN }), /current value is NaN/);
  assert.throws(
    () => mutex.acquireSync({ timeout: "10" as unknown as number }),
    /current value is "10"/,
  );
  using _lock = mutex.acquireSync({ timeout: 10 });
  assert.equal(mutex.locked, true);
});

Deno.test("ReentrantMutex: the owner re-enters; other threads wait; non-owners cannot release", async () => {
  const mutex = new ReentrantMutex();
  const flags = sharedFlags(2);
  const owner = new Thread({ target: work.holdReentrant, args: [mutex, flags] }).start();
  await flagSet(flags, 0);
  assert.equal(mutex.locked, true);
  assert.equal(mutex.tryAcquire(), undefined);
  assert.throws(() => mutex.release(), {
    name: "Error",
    message:
      /^Cannot release ReentrantMutex: it is held by another thread \(id \d+\), not by this thread \(MainThread, id 0\)$/,
  });
  await assert.rejects(mutex.acquire({ timeout: 20 }), TimeoutError);
  const waiting = mutex.acquire({ timeout: 5_000 });
  Atomics.store(flags, 1, 1);
  Atomics.notify(flags, 1);
  assert.equal(await within(owner.join()), 2);
  {
    using _outer = await within(waiting);
    using _inner = await mutex.acquire({ timeout: 0 }); // re-entry never waits
    using _third = mutex.acquireSync();
    assert.ok(mutex.tryAcquire());
    mutex.release();
    const stranger = new Thread({ target: work.releaseNotOwned, args: [mutex] }).start();
    assert.match(
      await within(stranger.join()),
      /^Cannot release ReentrantMutex: it is held by another thread \(id 0\), not by this thread \(.+, id [1-9]\d*\)$/,
    );
  }
  assert.equal(mutex.locked, false);
  assert.throws(() => mutex.release(), /Cannot release ReentrantMutex: it is not locked/);
  using _again = mutex.acquireSync();
  assert.equal(mutex.locked, true);
});

Deno.test("Mutex: a lease released early and disposed again at its scope's end does not release a later holder", async () => {
  const mutex = new Mutex();
  let otherHolds!: () => void;
  const held = new Promise<void>((resolve) => otherHolds = resolve);
  let finishOther!: () => void;
  const otherMayFinish = new Promise<void>((resolve) => finishOther = resolve);
  const other = async () => {
    using _lock = await mutex.acquire();
    otherHolds();
    await otherMayFinish;
  };
  let running: Promise<void> | undefined;
  {
    using lease = await mutex.acquire();
    lease[Symbol.dispose](); // released early, as Lease allows ("a second dispose does nothing")
    running = other();
    await held;
  } // the scope's dispose: must not release the other holder's lock
  assert.equal(mutex.locked, true, "the second dispose released another holder's lock");
  assert.equal(mutex.tryAcquire(), undefined);
  finishOther();
  await running;
  assert.equal(mutex.locked, false);
});
