// pool.terminate(): stop now (Python's Pool.terminate(), piscina's destroy()).
import assert from "node:assert/strict";
import { CancelledError, ProcessPool, ThreadPool } from "../mod.ts";
import { alive, failure, waitUntil, within, work } from "./_helpers.ts";

async function cancelledByTerminate(task: PromiseLike<unknown>): Promise<void> {
  const error = await failure(task);
  assert.ok(error instanceof CancelledError, `${error}`);
  assert.match(error.message, /terminate\(\) was called/);
}

Deno.test("ThreadPool.terminate cancels waiting and running tasks and takes no more", async () => {
  const pool = new ThreadPool({ maxWorkers: 2 });
  const running = [pool.submit(work.sleep, 60_000), pool.submit(work.sleep, 60_000)];
  const waiting = Array.from({ length: 10 }, (_, i) => pool.submit(work.add, i, 1));
  await waitUntil(() => pool.stats.runningTasks === 2);
  await within(pool.terminate());
  for (const task of [...running, ...waiting]) await cancelledByTerminate(task);
  assert.equal(pool.stats.workers, 0);
  assert.equal(pool.stats.cancelledTasks, 12);
  assert.throws(() => pool.submit(work.add, 1, 2), /has been shut down/);
  await within(pool.shutdown());
});

Deno.test("ProcessPool.terminate kills its children at once and fails their tasks", async () => {
  const pool = new ProcessPool({ maxWorkers: 2 });
  const pids = await within(
    Promise.all([pool.submit(work.whoAmIProcess), pool.submit(work.whoAmIProcess)]),
  );
  // A task that ignores its signal and would run for a minute: only a kill ends it.
  const running = [pool.submit(work.busyFor, 60_000), pool.submit(work.sleep, 60_000)];
  const waiting = pool.submit(work.add, 1, 2);
  await waitUntil(() => pool.stats.runningTasks === 2);
  await within(pool.terminate());
  for (const task of [...running, waiting]) await cancelledByTerminate(task);
  for (const { pid } of pids) assert.equal(alive(pid), false, `child ${pid} still runs`);
  assert.equal(pool.stats.workers, 0);
});

Deno.test("terminate on an idle pool ends it; a second call and shutdown return at once", async () => {
  const pool = new ThreadPool({ maxWorkers: 1, minWorkers: 1 });
  assert.equal(await within(pool.submit(work.add, 1, 2)), 3);
  await within(pool.terminate());
  await within(pool.terminate());
  await within(pool.shutdown());
  assert.equal(pool.stats.workers, 0);
});
