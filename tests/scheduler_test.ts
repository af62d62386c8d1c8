// The scheduler (internal/pool.ts) on a fake transport: each test plays the
// workers' side message by message, so every decision is deterministic and
// no worker starts.
import assert from "node:assert/strict";
import { fakePool, fakes, setFailSend, setFailSpawnAt, settle } from "./_fake_transport.ts";
import { failure, waitUntil, within } from "./_helpers.ts";
import type { Pool } from "../internal/pool.ts";

const same = (x: unknown) => x;

/** Runs one task on the first fake worker, so that the pool sends it large batches. */
async function warmUp(pool: Pool): Promise<void> {
  const task = pool.submit(same, 0);
  await settle();
  fakes[0].ready();
  fakes[0].answer([task.id]);
  await within(task);
}

Deno.test("scheduler: a crash mid-batch fails the started job, keeps the answered one, runs the rest elsewhere", async () => {
  const pool = fakePool({ maxWorkers: 1 });
  await warmUp(pool);
  const [a] = fakes;
  const tasks = [1, 2, 3].map((i) => pool.submit(same, i));
  await settle();
  assert.deepEqual(a.jobs.slice(1).map((job) => job.id), tasks.map((task) => task.id));
  a.answer([tasks[0].id]);
  a.start(tasks[1].id);
  a.exit(3);
  assert.equal(await within(tasks[0]), tasks[0].id);
  const crash = await failure(tasks[1]);
  assert.equal(crash.name, "WorkerCrashedError");
  assert.equal(crash.taskId, tasks[1].id);
  await settle();
  const b = fakes[1];
  assert.deepEqual(b.jobs.map((job) => job.id), [tasks[2].id]);
  b.ready();
  b.answer([tasks[2].id]);
  assert.equal(await within(tasks[2]), tasks[2].id);
  assert.equal(pool.stats.crashedWorkers, 1);
  await within(pool.shutdown());
});

Deno.test("scheduler: a send that fails fails only its task, and the next one still defines the function", async () => {
  const pool = fakePool({ maxWorkers: 1 });
  setFailSend((message) => message.type === "run" && message.args.includes("unsendable"));
  const bad = pool.submit(same, "unsendable");
  const good = pool.submit(same, 1);
  await settle();
  const [a] = fakes;
  assert.equal((await failure(bad)).name, "SerializationError");
  assert.deepEqual(a.jobs.map((job) => job.id), [good.id]);
  assert.ok(a.defined.has(a.job(good.id).fn), "the function reached the worker");
  a.ready();
  a.answer([good.id]);
  assert.equal(await within(good), good.id);
  await within(pool.shutdown());
});

Deno.test("scheduler: an idle worker takes the jobs a silent busy one has not started", async () => {
  const pool = fakePool({ maxWorkers: 2 });
  await warmUp(pool);
  const tasks = Array.from({ length: 6 }, (_, i) => pool.submit(same, i));
  await settle();
  const [a, b] = fakes;
  const onA = a.jobs.slice(1).map((job) => job.id);
  const onB = b.jobs.map((job) => job.id);
  assert.equal(onA.length, 3);
  assert.equal(onB.length, 3);
  a.start(onA[0]); // A is stuck in its first job
  b.ready();
  b.answer(onB);
  // After A has been silent a while, B takes A's two jobs that have not started.
  await waitUntil(() => b.jobs.length === 5);
  assert.deepEqual(b.jobs.slice(3).map((job) => job.id).sort(), onA.slice(1).sort());
  assert.equal(a.withdrawn.size, 2);
  b.answer(onA.slice(1));
  a.answer([onA[0]]);
  a.skipWithdrawn();
  assert.deepEqual(await within(Promise.all(tasks)), tasks.map((task) => task.id));
  await within(pool.shutdown());
});

Deno.test("scheduler: cancelling a running job retires its worker; the rest run on a replacement", async () => {
  const pool = fakePool({ maxWorkers: 1 });
  await warmUp(pool);
  const [long, next, last] = [1, 2, 3].map((i) => pool.submit(same, i));
  await settle();
  const [a] = fakes;
  a.start(long.id);
  assert.equal(long.cancel(), true);
  assert.equal((await failure(long)).name, "CancelledError");
  assert.deepEqual(a.cancelled, [a.job(long.id).slot]);
  await settle();
  const b = fakes[1];
  assert.deepEqual(b.jobs.map((job) => job.id), [next.id, last.id]);
  b.ready();
  b.answer([next.id, last.id]);
  assert.deepEqual(await within(Promise.all([next, last])), [next.id, last.id]);
  // The retiring worker ends once the abandoned job has answered.
  assert.equal(a.terminated, false);
  a.answer([long.id]);
  a.skipWithdrawn();
  assert.equal(a.terminated, true);
  assert.equal(pool.stats.crashedWorkers, 0);
  await within(pool.shutdown());
});

Deno.test("scheduler: three workers dying before answering break the pool, which starts no more", async () => {
  const pool = fakePool({ maxWorkers: 2, minWorkers: 2 });
  const task = pool.submit(same, 1);
  await settle();
  assert.equal(fakes.length, 2);
  fakes[0].exit(1);
  fakes[1].exit(1); // two replacements start (minWorkers)
  assert.equal(fakes.length, 4);
  fakes[2].exit(1); // the third in a row: broken, and fakes[3] is ended
  assert.equal((await failure(task)).name, "BrokenPoolError");
  assert.equal(fakes[3].terminated, true);
  await settle();
  assert.equal(fakes.length, 4);
  assert.throws(() => pool.submit(same, 2), { name: "BrokenPoolError" });
  await within(pool.shutdown());
});

Deno.test("scheduler: workers that answered, then died, do not count toward a broken pool", async () => {
  const pool = fakePool({ maxWorkers: 1 });
  const task = pool.submit(same, 1);
  // Two die before answering; one answers, then dies before starting the job; two more
  // die before answering. Never three in a row before answering: the pool is not broken.
  for (let i = 0; i < 5; i++) {
    await settle();
    if (i === 2) fakes[i].ready();
    fakes[i].exit(1);
  }
  await settle();
  assert.deepEqual(fakes[5].jobs.map((job) => job.id), [task.id]);
  fakes[5].answer([task.id]);
  assert.equal(await within(task), task.id);
  assert.equal(pool.stats.crashedWorkers, 5);
  await within(pool.shutdown());
});

Deno.test("scheduler: a retiring worker that is killed (a cancelled process) is not a crash", async () => {
  const pool = fakePool({ maxWorkers: 1 });
  await warmUp(pool);
  const task = pool.submit(same, 1);
  await settle();
  fakes[0].start(task.id);
  task.cancel();
  fakes[0].exit(137);
  assert.equal((await failure(task)).name, "CancelledError");
  assert.equal(pool.stats.crashedWorkers, 0);
  await within(pool.shutdown());
});

Deno.test("scheduler: cancel before start withdraws; cancel after start stops the job", async () => {
  const pool = fakePool({ maxWorkers: 1 });
  await warmUp(pool);
  const [first, second] = [1, 2].map((i) => pool.submit(same, i));
  await settle();
  const [a] = fakes;
  a.start(first.id);
  assert.equal(second.cancel(), true);
  assert.equal((await failure(second)).name, "CancelledError");
  assert.deepEqual([...a.withdrawn], [a.job(second.id).slot]);
  assert.deepEqual(a.cancelled, []);
  assert.equal(first.cancel(), true);
  assert.deepEqual(a.cancelled, [a.job(first.id).slot]);
  assert.equal(second.cancel(), false);
  a.answer([first.id]);
  a.skipWithdrawn();
  assert.equal((await failure(first)).name, "CancelledError");
  await within(pool.shutdown());
});

Deno.test("scheduler: stats tell held jobs from running ones", async () => {
  const pool = fakePool({ maxWorkers: 1 });
  await warmUp(pool);
  const tasks = [1, 2, 3].map((i) => pool.submit(same, i));
  await settle();
  const [a] = fakes;
  a.start(tasks[0].id);
  assert.equal(pool.stats.runningTasks, 1);
  assert.equal(pool.stats.pendingTasks, 2);
  a.answer(tasks.map((task) => task.id));
  await within(Promise.all(tasks));
  assert.equal(pool.stats.runningTasks, 0);
  assert.equal(pool.stats.pendingTasks, 0);
  await within(pool.shutdown());
});

Deno.test("scheduler: a pool broken while its constructor starts workers starts no more", async () => {
  setFailSpawnAt(1);
  const pool = fakePool({ maxWorkers: 4, minWorkers: 4 });
  setFailSpawnAt(-1);
  assert.equal(fakes.length, 1);
  assert.equal(fakes[0].terminated, true);
  assert.equal(pool.stats.workers, 0);
  assert.throws(() => pool.submit(same, 1), { name: "BrokenPoolError" });
  await within(pool.shutdown());
});

Deno.test("scheduler: a task cancelled before it started does not count toward maxTasksPerWorker", async () => {
  const pool = fakePool({ maxWorkers: 1, maxTasksPerWorker: 4 });
  await warmUp(pool); // 1
  const [a] = fakes;
  const tasks = [1, 2, 3].map((i) => pool.submit(same, i)); // 4 taken
  await settle();
  tasks[2].cancel(); // withdrawn: 3
  a.answer([tasks[0].id, tasks[1].id]);
  a.skipWithdrawn();
  const next = pool.submit(same, 4);
  await settle();
  assert.equal(fakes.length, 1, "the worker was not replaced");
  a.answer([next.id]);
  assert.equal(await within(next), next.id);
  await within(pool.shutdown());
});

Deno.test("scheduler: cancelling a process's running task fails only it, however late the child exits", async () => {
  const pool = fakePool({ maxWorkers: 1 });
  await warmUp(pool);
  const [a] = fakes;
  a.likeProcess = true;
  const tasks = [1, 2, 3].map((i) => pool.submit(same, i));
  await settle();
  a.start(tasks[0].id);
  tasks[0].cancel();
  // Longer than the grace a retiring thread gets: the killed child has not exited yet.
  await new Promise((resolve) => setTimeout(resolve, 700));
  a.exit(137);
  await settle();
  const b = fakes[1];
  assert.deepEqual(b.jobs.map((job) => job.id), [tasks[1].id, tasks[2].id]);
  b.answer([tasks[1].id, tasks[2].id]);
  assert.equal((await failure(tasks[0])).name, "CancelledError");
  assert.deepEqual(await within(Promise.all(tasks.slice(1))), [tasks[1].id, tasks[2].id]);
  assert.equal(pool.stats.crashedWorkers, 0);
  await within(pool.shutdown());
});
