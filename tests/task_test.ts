// The Task handle's own API: running, addDoneCallback.
import assert from "node:assert/strict";
import { ProcessPool, type Task, tasks, ThreadPool } from "../mod.ts";
import { sharedFlags, waitUntil, within, work } from "./_helpers.ts";

const promiseWork = tasks<typeof import("./_promise_tasks.ts")>(
  new URL("./_promise_tasks.ts", import.meta.url),
);

/** Runs `body` with console.error captured; returns what it printed. */
async function capturingErrors(body: () => Promise<void>): Promise<unknown[][]> {
  const printed: unknown[][] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => printed.push(args);
  try {
    await body();
  } finally {
    console.error = original;
  }
  return printed;
}

Deno.test("addDoneCallback: once each, in the order added, at once when already settled", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const calls: string[] = [];
  const task = pool.submit(work.sleep, 50, "value");
  task.addDoneCallback((t) => calls.push(`first ${t === task} ${t.done}`));
  task.addDoneCallback(() => calls.push("second"));
  assert.equal(calls.length, 0);
  assert.equal(await within(task), "value");
  assert.deepEqual(calls, ["first true true", "second"]);
  task.addDoneCallback(() => calls.push("late"));
  assert.deepEqual(calls, ["first true true", "second", "late"]);
  await within(pool.submit(work.add, 1, 2));
  assert.deepEqual(calls, ["first true true", "second", "late"], "a callback ran twice");
});

Deno.test("addDoneCallback: a failed task is no unhandled rejection; a throwing callback is reported and the next still runs", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const calls: string[] = [];
  const printed = await capturingErrors(async () => {
    const failing = pool.submit(work.fail, "boom");
    failing.addDoneCallback(() => {
      throw new Error("callback broke");
    });
    failing.addDoneCallback(async () => {
      await null;
      throw new Error("async callback broke");
    });
    failing.addDoneCallback((t) => calls.push(`third ${t.done}`));
    await waitUntil(() => calls.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 0));
  });
  assert.deepEqual(calls, ["third true"]);
  assert.equal(printed.length, 2);
  assert.match(String(printed[0][0]), /A done callback of task \d+ failed/);
  assert.equal((printed[0][1] as Error).message, "callback broke");
  assert.equal((printed[1][1] as Error).message, "async callback broke");
  assert.equal(await within(pool.submit(work.add, 1, 2)), 3, "the pool stopped working");
});

Deno.test("addDoneCallback: a cancelled task calls back with cancelled set; bad input names the argument", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const flags = sharedFlags(3);
  const blocker = pool.submit(promiseWork.stuckUntil, flags, 0, 1, 2, 10_000);
  const queued = pool.submit(work.add, 1, 2);
  let seen: Task<number> | undefined;
  queued.addDoneCallback((t) => seen = t);
  assert.equal(queued.cancel(), true);
  assert.equal(seen, queued);
  assert.equal(seen?.cancelled, true);
  assert.throws(() => queued.addDoneCallback("print" as never), {
    name: "TypeError",
    message: `Task.addDoneCallback: 'callback' must be a function: current value is "print"`,
  });
  Atomics.store(flags, 1, 1);
  Atomics.notify(flags, 1);
  await within(blocker);
});

Deno.test("running: true only while a worker runs the task, not while it holds it, in threads", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  // Tiny tasks first: the pool then hands the worker many jobs at once, so the ones behind
  // the stuck task are held by the worker, not waiting in the pool.
  await within(Promise.all(Array.from({ length: 2_000 }, (_, i) => pool.submit(work.add, i, 1))));
  const flags = sharedFlags(3);
  const first = pool.submit(promiseWork.stuckUntil, flags, 0, 1, 2, 10_000);
  const behind = Array.from({ length: 50 }, (_, i) => pool.submit(work.add, i, 1));
  assert.equal(first.running, false, "running before it was sent");
  await waitUntil(() => Atomics.load(flags, 0) === 1);
  assert.equal(first.running, true);
  assert.equal(pool.stats.pendingTasks, 50);
  assert.deepEqual(behind.filter((task) => task.running), [], "a held task counts as running");
  Atomics.store(flags, 1, 1);
  Atomics.notify(flags, 1);
  await within(Promise.all([first, ...behind]));
  assert.equal(first.running, false);
});

Deno.test("running: true while a child process runs the task, false once it has settled", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1 });
  const first = pool.submit(work.sleep, 400, "a");
  const second = pool.submit(work.add, 1, 2);
  await waitUntil(() => first.running);
  assert.equal(second.running, false);
  assert.deepEqual(await within(Promise.all([first, second])), ["a", 3]);
  assert.equal(first.running, false);
});
