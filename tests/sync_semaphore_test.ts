import assert from "node:assert/strict";
import { tasks, Thread, ThreadPool, TimeoutError } from "../mod.ts";
import { BoundedSemaphore, Event, Mutex, Semaphore, WaitGroup } from "../sync/mod.ts";
import { flagSet, sharedFlags, within } from "./_helpers.ts";

const work = tasks<typeof import("./_sync_tasks.ts")>(
  new URL("./_sync_tasks.ts", import.meta.url),
);

Deno.test("Semaphore(2) among six threads never lets a third in", async () => {
  const semaphore = new Semaphore(2);
  const stats = sharedFlags(3); // holders now, most holders seen, threads arrived
  await using pool = new ThreadPool({ maxWorkers: 6 });
  const runs = Array.from(
    { length: 6 },
    () => pool.submit(work.permitEntries, semaphore, stats, 20, 6),
  );
  await within(Promise.all(runs), 20_000);
  assert.equal(stats[1], 2);
  assert.equal(stats[0], 0);
  // Both permits are back.
  const a = semaphore.tryAcquire();
  const b = semaphore.tryAcquire();
  assert.ok(a && b);
  assert.equal(semaphore.tryAcquire(), undefined);
});

Deno.test("Semaphore: acquire waits for a thread's release, then times out when none comes", async () => {
  const semaphore = new Semaphore(1);
  const flags = sharedFlags(1);
  const holder = new Thread({ target: work.holdFor, args: [semaphore, flags, 100] }).start();
  await flagSet(flags, 0);
  assert.equal(semaphore.tryAcquire(), undefined);
  const lease = await within(semaphore.acquire({ timeout: 5_000 }));
  await within(holder.join());
  await assert.rejects(semaphore.acquire({ timeout: 30 }), (error: unknown) => {
    assert.ok(error instanceof TimeoutError);
    assert.match(error.message, /^Semaphore\.acquire\(\) timed out after 30 ms$/);
    return true;
  });
  lease[Symbol.dispose]();
  using _permit = semaphore.acquireSync({ timeout: 0 });
});

Deno.test("Semaphore: release may add permits; an aborted acquire leaves the count as it was", async () => {
  const semaphore = new Semaphore(0);
  const controller = new AbortController();
  const pending = semaphore.acquire({ signal: controller.signal });
  controller.abort(new Error("no longer needed"));
  await assert.rejects(pending, { message: "no longer needed" });
  semaphore.release();
  semaphore.release();
  const a = semaphore.tryAcquire();
  const b = semaphore.tryAcquire();
  assert.ok(a && b);
  assert.equal(semaphore.tryAcquire(), undefined);
});

Deno.test("Semaphore: bad permits are refused with the value", () => {
  assert.throws(() => new Semaphore(-1), {
    name: "RangeError",
    message: "Cannot create Semaphore: 'permits' must be a whole number >= 0: current value is -1",
  });
  assert.throws(() => new Semaphore(NaN), {
    name: "RangeError",
    message: "Cannot create Semaphore: 'permits' must be a whole number >= 0: current value is NaN",
  });
  assert.throws(() => new Semaphore(1.5), /current value is 1\.5/);
  assert.throws(() => new Semaphore(2 ** 31), /<= 2147483647: current value is 2147483648/);
  assert.throws(() => new Semaphore("2" as unknown as number), {
    name: "TypeError",
    message: `Cannot create Semaphore: 'permits' must be a whole number >= 0: current value is "2"`,
  });
  assert.throws(
    () => new BoundedSemaphore(-3),
    /Cannot create BoundedSemaphore: .* current value is -3/,
  );
  // Zero permits is allowed: every acquire waits for a release.
  assert.equal(new Semaphore(0).tryAcquire(), undefined);
});

Deno.test("BoundedSemaphore: a release above its start throws, and it keeps working", async () => {
  const semaphore = new BoundedSemaphore(2);
  assert.ok(semaphore instanceof Semaphore);
  assert.throws(() => semaphore.release(), {
    name: "RangeError",
    message: "Cannot release BoundedSemaphore: all 2 of its permits are already released",
  });
  const lease = await semaphore.acquire();
  semaphore.release();
  // Disposing the lease now is a second release of the same permit.
  assert.throws(() => lease[Symbol.dispose](), /all 2 of its permits/);
  assert.throws(() => semaphore.release(), /all 2 of its permits/);
  const a = semaphore.acquireSync();
  const b = semaphore.acquireSync();
  assert.equal(semaphore.tryAcquire(), undefined);
  a[Symbol.dispose]();
  b[Symbol.dispose]();
  assert.throws(() => semaphore.release(), RangeError);
});

Deno.test("BoundedSemaphore: it arrives in a thread bounded, on the same permits", async () => {
  const semaphore = new BoundedSemaphore(1);
  const flags = sharedFlags(1);
  const holder = new Thread({ target: work.holdFor, args: [semaphore, flags, 20] }).start();
  await within(holder.join());
  assert.throws(() => semaphore.release(), RangeError);
  assert.ok(semaphore.tryAcquire());
});

Deno.test("sync primitives inside objects, arrays, Maps and Sets arrive working", async () => {
  const mutex = new Mutex();
  const event = new Event();
  const group = new WaitGroup();
  const semaphore = new Semaphore(1);
  group.add(1);
  const thread = new Thread({
    target: work.nested,
    args: [{
      mutex,
      events: [event],
      groups: new Map([["group", group]]),
      sems: new Set([semaphore]),
    }],
  }).start();
  assert.equal(await within(thread.join()), "permit taken");
  assert.equal(event.isSet, true);
  assert.equal(group.count, 0);
  assert.equal(semaphore.tryAcquire(), undefined); // the thread's lease was never disposed
  assert.equal(mutex.locked, false);
});
