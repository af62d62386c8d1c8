// A worker that dies under a task fails that task alone, and is replaced.
import assert from "node:assert/strict";
import { ThreadPool, WorkerCrashedError } from "../mod.ts";
import { failure, within, work } from "./_helpers.ts";

for (
  const [how, crash, code] of [
    ["calls self.close()", work.closeSelf, null],
    ["calls Deno.exit(3)", work.exitSelf, 3],
    ["throws from a timer callback", work.throwInTimer, null],
  ] as const
) {
  Deno.test(`a worker that ${how} fails its task with WorkerCrashedError and is replaced`, async () => {
    await using pool = new ThreadPool({ maxWorkers: 2 });
    const others = [pool.submit(work.sleep, 50, "a"), pool.submit(work.sleep, 50, "b")];
    const error = await failure(pool.submit(crash as typeof work.exitSelf, 3));
    assert.ok(error instanceof WorkerCrashedError, String(error));
    assert.equal(error.exitCode, code);
    assert.equal(error.signal, null);
    assert.match(error.workerName, /^ThreadPool-\d+-worker-\d$/);
    assert.equal(typeof error.taskId, "number");
    assert.deepEqual(await within(Promise.all(others)), ["a", "b"]);
    assert.deepEqual(await within(pool.map(work.fib, [10, 11, 12])), [55, 89, 144]);
    assert.equal(pool.stats.crashedWorkers, 1);
    assert.ok(pool.stats.workers <= 2);
  });
}

Deno.test("tasks queued behind a crashing task on the same worker run elsewhere, once", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  // Teach the pool that tasks are tiny, so it sends several to the worker at once.
  await within(
    pool.map((x: number) => x, Array.from({ length: 200 }, (_, i) => i), { chunkSize: 1 }),
  );
  const flags = new Int32Array(new SharedArrayBuffer(4));
  const crash = pool.submit(work.exitSelf, 7);
  const behind = Array.from({ length: 20 }, () => pool.submit(work.count, flags));
  const error = await failure(crash);
  assert.ok(error instanceof WorkerCrashedError);
  assert.equal(error.exitCode, 7);
  const counts = await within(Promise.all(behind));
  assert.equal(Atomics.load(flags, 0), 20, "every task behind the crash ran exactly once");
  assert.deepEqual(counts.toSorted((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1));
});

Deno.test("a worker that cannot start breaks the pool instead of respawning forever", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1, initializer: work.exitSelf, initArgs: [9] });
  const error = await failure(pool.submit(work.add, 1, 2));
  assert.equal(error.name, "BrokenPoolError");
  assert.match(error.message, /died before answering/);
});
