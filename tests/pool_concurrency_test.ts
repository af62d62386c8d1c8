// concurrentTasksPerWorker: async tasks overlap on one worker.
import assert from "node:assert/strict";
import { ProcessPool, ThreadPool, Value } from "../mod.ts";
import { failure, flagSet, sharedFlags, within, work } from "./_helpers.ts";

for (const Pool of [ThreadPool, ProcessPool]) {
  Deno.test(`${Pool.name}: 2 workers x concurrentTasksPerWorker 5 run 10 async tasks at once`, async () => {
    await using pool = new Pool({ maxWorkers: 2, concurrentTasksPerWorker: 5 });
    const counter = new Value("int32", 0);
    const ids = await within(
      Promise.all(Array.from({ length: 10 }, () => pool.submit(work.arriveAndWait, counter, 10))),
      20_000,
    );
    assert.equal(await counter.load(), 10);
    assert.ok(new Set(ids).size <= 2, `ran on ${new Set(ids).size} workers`);
  });
}

Deno.test("without it, a worker runs one task at a time: two waiting for each other on 1 worker never meet", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const counter = new Value("int32", 0);
  const first = pool.submit(work.arriveAndWait, counter, 2, 500);
  const second = pool.submit(work.arriveAndWait, counter, 2, 500);
  const error = await failure(first, 20_000);
  await second; // it arrives once the first has given up
  assert.match(error.message, /only 1 tasks ran at once/);
});

for (const Pool of [ThreadPool, ProcessPool]) {
  Deno.test(`${Pool.name}: a cancelled or timed-out task among concurrent ones fails alone; the worker goes on`, async () => {
    await using pool = new Pool({ maxWorkers: 1, concurrentTasksPerWorker: 3 });
    const whoAmI = Pool === ProcessPool ? work.whoAmIProcess : work.whoAmI;
    const who = await within(pool.submit(whoAmI));
    const cancelled = pool.submit(work.awaitOwnCancel, 5_000);
    const timed = pool.apply(work.awaitOwnCancel, [5_000], { timeout: 100 });
    const neighbour = pool.submit(work.awaitOwnCancel, 300);
    await new Promise((resolve) => setTimeout(resolve, 50));
    cancelled.cancel();
    assert.equal((await failure(cancelled)).name, "CancelledError");
    assert.equal((await failure(timed)).name, "TimeoutError");
    assert.equal(await within(neighbour), false, "the neighbour's context said cancelled");
    assert.deepEqual(await within(pool.submit(whoAmI)), who, "the worker was replaced");
    assert.equal(pool.stats.crashedWorkers, 0);
  });
}

Deno.test("concurrentTasksPerWorker must be a whole number >= 1", () => {
  assert.throws(() => new ThreadPool({ concurrentTasksPerWorker: 0 }), {
    name: "RangeError",
    message: /'concurrentTasksPerWorker'.*current value is 0/,
  });
  assert.throws(() => new ProcessPool({ concurrentTasksPerWorker: 1.5 }), {
    name: "RangeError",
    message: /'concurrentTasksPerWorker'/,
  });
});

for (const Pool of [ThreadPool, ProcessPool]) {
  Deno.test(`${Pool.name}: a quick task's result is not held back by an async neighbour still awaiting`, async () => {
    await using pool = new Pool({ maxWorkers: 1, concurrentTasksPerWorker: 2 });
    await within(pool.submit(work.add, 0, 0)); // the worker is up
    const slow = pool.submit(work.sleep, 3_000, "slow");
    const quick = pool.submit(work.add, 1, 2);
    assert.equal(await within(quick), 3);
    assert.equal(slow.done, false, "the quick result waited for the slow one");
    assert.equal(await within(slow), "slow");
  });
}

Deno.test("a cancelled task among concurrent ones sees its own signal abort in the worker", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1, concurrentTasksPerWorker: 2 });
  const flags = sharedFlags(2);
  const cancelled = pool.submit(work.awaitAbort, flags);
  const neighbour = pool.submit(work.sleep, 100, "neighbour");
  await flagSet(flags, 0);
  cancelled.cancel();
  await flagSet(flags, 1);
  assert.equal(await within(neighbour), "neighbour");
});
