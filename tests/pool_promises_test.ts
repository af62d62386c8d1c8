// Promises of the scheduler (internal/pool.ts), the runner (internal/runner.ts) and the codec
// (internal/codec.ts) that only show under a race or an unusual order of events: stuck tasks,
// retiring workers, stolen tasks, crashes, errors. Tasks report what they saw through shared
// flags (tests/_promise_tasks.ts), and each test asserts the order of events and the outcomes,
// never how long something took.
import assert from "node:assert/strict";
import {
  CancelledError,
  ProcessPool,
  tasks,
  ThreadPool,
  TimeoutError,
  WorkerCrashedError,
} from "../mod.ts";
import { failure, flagSet, runProgram, sharedFlags, within, work } from "./_helpers.ts";

const p = tasks<typeof import("./_promise_tasks.ts")>(
  new URL("./_promise_tasks.ts", import.meta.url),
);

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function raise(flags: Int32Array, index: number): void {
  Atomics.store(flags, index, 1);
  Atomics.notify(flags, index);
}

/** Waits until `check()` is true, for at most `ms`. */
async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await delay(5);
  }
}

/**
 * Runs `count` tasks one after another on the pool's one idle worker, so that the pool has
 * measured tiny run times and hands its workers several jobs per batch (and the worker has
 * loaded the task functions, so its next jobs do not wait for an import).
 */
async function warmUp(pool: ThreadPool, count = 20): Promise<void> {
  const flags = sharedFlags(4);
  raise(flags, 1);
  for (let i = 0; i < count; i++) {
    await within(pool.submit(p.threadId));
    await within(pool.submit(p.ignoreSignalUntil, flags, 0, 1, 2, 1_000));
  }
}

// ---- 6. a stuck task does not hold up the tasks behind it --------------------------------

for (const how of ["times out", "is cancelled"] as const) {
  Deno.test(`ThreadPool(1): a task stuck in a synchronous loop that ${how} does not hold back the tasks it was handed with`, async () => {
    await using pool = new ThreadPool({ maxWorkers: 1 });
    await warmUp(pool, 10);
    const flags = sharedFlags(4); // 0: started, 1: release, 2: ended
    const stuck = how === "times out"
      ? pool.apply(p.stuckUntil, [flags, 0, 1, 2, 10_000], { timeout: 50 })
      : pool.submit(p.stuckUntil, flags, 0, 1, 2, 10_000);
    // Submitted in the same turn: they go to the same worker, in the same batch.
    const behind = Array.from({ length: 20 }, (_, i) => pool.submit(work.add, i, 0));
    await flagSet(flags, 0);
    if (how === "is cancelled") assert.equal(stuck.cancel(), true);
    const error = await failure(stuck);
    assert.ok(
      error instanceof (how === "times out" ? TimeoutError : CancelledError),
      String(error),
    );
    // A replacement runs them, while the stuck loop still runs on its abandoned thread.
    assert.deepEqual(await within(Promise.all(behind)), behind.map((_, i) => i));
    assert.equal(Atomics.load(flags, 2), 0, "the tasks waited for the stuck loop to end");
    assert.equal(pool.stats.workers, 1);
    raise(flags, 1);
    await flagSet(flags, 2);
  });

  Deno.test(`ThreadPool(1): a task behind one that ${how} and ignores its signal runs while the abandoned task is still there`, async () => {
    await using pool = new ThreadPool({ maxWorkers: 1 });
    const flags = sharedFlags(4); // 0: started, 1: released by the task behind, 2: seen
    const stuck = how === "times out"
      ? pool.apply(p.ignoreSignalUntil, [flags, 0, 1, 2, 10_000], { timeout: 50 })
      : pool.submit(p.ignoreSignalUntil, flags, 0, 1, 2, 10_000);
    await flagSet(flags, 0);
    const behind = pool.submit(p.raiseFlag, flags, 1);
    if (how === "is cancelled") assert.equal(stuck.cancel(), true);
    await failure(stuck);
    await within(behind);
    // The abandoned task saw the flag the task behind raised: that task ran while the
    // abandoned worker was still alive. (The pool ends an abandoned worker after a grace of
    // 500 ms; a pool that started the replacement only then would have ended the abandoned
    // task before the task behind could run, and flag 2 would never be raised.)
    await flagSet(flags, 2);
  });
}

// ---- 7. a finished task's timeout timer ---------------------------------------------------

Deno.test("a finished task's timeout timer does not keep the program alive after shutdown()", async () => {
  const { code, stdout, stderr } = await runProgram(
    `
    import { ProcessPool, ThreadPool } from "@parallel/core";
    for (const Pool of [ThreadPool, ProcessPool]) {
      const pool = new Pool({ maxWorkers: 1 });
      const results = [];
      for (let i = 0; i < 3; i++) {
        results.push(await pool.apply((x: number) => x * 2, [i], { timeout: 600_000 }));
      }
      await pool.shutdown();
      console.log(Pool.name, results.join(" "));
    }
  `,
    30_000,
  );
  assert.equal(code, 0, `the program did not exit on its own (code ${code}): ${stderr}`);
  assert.equal(stdout.trim(), "ThreadPool 0 2 4\nProcessPool 0 2 4");
});

// ---- 8. a stopped child is not a crash ---------------------------------------------------

Deno.test("ProcessPool: a task cancelled or timed out is not counted as a crashed worker", async () => {
  const pool = new ProcessPool({ maxWorkers: 1 });
  try {
    const timed = pool.apply(p.sleep, [60_000], { timeout: 100 });
    assert.ok((await failure(timed)) instanceof TimeoutError);
    const running = pool.submit(p.sleep, 60_000);
    await until(() => pool.stats.runningTasks === 1, "the task reached a child");
    assert.equal(running.cancel(), true);
    assert.ok((await failure(running)) instanceof CancelledError);
    // A real crash, which counts.
    assert.ok((await failure(pool.submit(work.exitSelf, 3))) instanceof WorkerCrashedError);
    assert.equal(await within(pool.submit(work.add, 1, 2)), 3);
  } finally {
    await within(pool.shutdown());
  }
  const stats = pool.stats;
  assert.equal(stats.crashedWorkers, 1, JSON.stringify(stats));
  assert.equal(stats.cancelledTasks, 1);
  assert.equal(stats.failedTasks, 2);
});

// ---- 9. shutdown() and the workers it retires --------------------------------------------

Deno.test("shutdown() resolves only once a worker retired by a cancelled task has ended", async () => {
  // JSDoc of shutdown(): "resolves when every worker has ended or, for a thread stuck [in a
  // synchronous loop], been let go". An async task that ignores its signal is not stuck:
  // its worker ends when the task does, and shutdown() waits for that.
  const pool = new ThreadPool({ maxWorkers: 1 });
  const flags = sharedFlags(4); // 0: started, 1: release, 2: ended
  const abandoned = pool.submit(p.ignoreSignalUntil, flags, 0, 1, 2, 10_000);
  await flagSet(flags, 0);
  assert.equal(abandoned.cancel(), true);
  assert.ok((await failure(abandoned)) instanceof CancelledError);
  let endedAtShutdown = -1;
  const shutdown = pool.shutdown().then(() => endedAtShutdown = Atomics.load(flags, 2));
  await delay(20); // a shutdown that does not wait for the retiring worker resolves meanwhile
  raise(flags, 1);
  await within(shutdown);
  assert.equal(endedAtShutdown, 1, "shutdown() resolved while the retiring worker still ran");
});

Deno.test("shutdown() lets go of a thread stuck in a synchronous loop without waiting for the loop", async () => {
  const pool = new ThreadPool({ maxWorkers: 1 });
  const flags = sharedFlags(4); // 0: started, 1: release, 2: ended
  const stuck = pool.submit(p.stuckUntil, flags, 0, 1, 2, 10_000);
  await flagSet(flags, 0);
  stuck.cancel();
  await failure(stuck);
  await within(pool.shutdown());
  assert.equal(Atomics.load(flags, 2), 0, "shutdown() waited for the loop");
  raise(flags, 1);
  await flagSet(flags, 2);
});

// ---- 10. crashes of workers that had answered never break the pool -----------------------

for (const Pool of [ThreadPool, ProcessPool]) {
  Deno.test(`${Pool.name}: tasks that crash fresh workers as their first job never break the pool`, async () => {
    // A child that exits at once may die before its "ready" reaches the parent: it never
    // answered, but it started a job, so it is a crash, not a worker that cannot start.
    await using pool = new Pool({ maxWorkers: 1 });
    for (let i = 0; i < 4; i++) {
      const crash = await failure(pool.submit(work.exitSelf, 3));
      assert.ok(crash instanceof WorkerCrashedError, String(crash));
    }
    assert.equal(await within(pool.submit(work.add, 2, 2)), 4);
    assert.equal(pool.stats.crashedWorkers, 4);
  });
}

Deno.test("ThreadPool: only workers in a row that die before answering count toward a broken pool", async () => {
  const flags = sharedFlags(1);
  flags[0] = 2; // the next two workers die in their initializer, before answering
  await using pool = new ThreadPool({
    maxWorkers: 1,
    initializer: p.exitWhileCounted,
    initArgs: [flags],
  });
  assert.equal(await within(pool.submit(work.add, 1, 1)), 2); // on the third worker
  Atomics.store(flags, 0, 2); // two more die before answering…
  assert.ok((await failure(pool.submit(work.exitSelf, 3))) instanceof WorkerCrashedError);
  assert.equal(await within(pool.submit(work.add, 2, 2)), 4); // …and the fifth answers
  assert.equal(pool.stats.crashedWorkers, 5);
});

// ---- 11. stolen tasks and maxTasksPerWorker ---------------------------------------------

Deno.test("tasks stolen from a busy worker do not count toward its maxTasksPerWorker", async () => {
  const warm = 20;
  // Worker A runs the warm-up, then takes a long task and a short one; a new worker B takes
  // another short one, then steals A's. A has then taken warm + 1 tasks, below the limit.
  await using pool = new ThreadPool({ maxWorkers: 2, maxTasksPerWorker: warm + 2 });
  const a = await within(pool.submit(p.threadId));
  for (let i = 1; i < warm; i++) assert.equal(await within(pool.submit(p.threadId)), a);
  const flags = sharedFlags(4); // 0: started, 1: release, 2: ended
  const long = pool.submit(p.stuckUntil, flags, 0, 1, 2, 10_000);
  const stolen = pool.submit(p.threadId);
  const other = pool.submit(p.threadId);
  await flagSet(flags, 0);
  const b = await within(other);
  assert.notEqual(b, a);
  assert.equal(await within(stolen), b, "the short task was not stolen");
  raise(flags, 1);
  assert.equal(await within(long), a);
  // A ran warm + 1 tasks: it is below its limit and stays.
  assert.equal(pool.stats.workers, 2, "worker A was replaced early");
});

// ---- 12. a quick result is not held back behind an async task ----------------------------

Deno.test("a quick result is not held back behind an async task on the same worker", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  await warmUp(pool);
  const flags = sharedFlags(4); // 0: started, 1: release, 2: seen
  // In the same turn: one batch to the one worker, the quick task first.
  const quick = pool.submit(p.threadId);
  const slow = pool.submit(p.ignoreSignalUntil, flags, 0, 1, 2, 5_000);
  await within(quick);
  assert.equal(slow.done, false, "the quick result came only with the async task's");
  raise(flags, 1); // released only now that the quick result is here
  assert.equal(await within(slow), "released");
});

// ---- 13. currentTask().signal read late ---------------------------------------------------

for (const kind of ["a synchronous", "an async"] as const) {
  Deno.test(`currentTask().signal first read after ${kind} task was cancelled is already aborted`, async () => {
    await using pool = new ThreadPool({ maxWorkers: 1 });
    const flags = sharedFlags(4); // 0: started, 1: looked, 2: 1 aborted / 2 not, 3: go on
    const task = kind === "a synchronous"
      ? pool.submit(p.signalAfterCancelSync, flags)
      : pool.submit(p.signalAfterCancelAsync, flags);
    await flagSet(flags, 0);
    assert.equal(task.cancel(), true);
    assert.ok((await failure(task)) instanceof CancelledError);
    raise(flags, 3);
    await flagSet(flags, 1);
    assert.equal(Atomics.load(flags, 2), 1, "the signal was not aborted");
  });
}

// ---- 14. errors cross with their name and own properties ----------------------------------

for (const Pool of [ThreadPool, ProcessPool]) {
  Deno.test(`${Pool.name}: a custom error arrives with its name, message, cause, stack and own properties`, async () => {
    await using pool = new Pool({ maxWorkers: 1 });
    const error: Error & Record<string, unknown> = await failure(
      pool.submit(p.failWithCode, "E_CUSTOM"),
    );
    // README: "a task's error arrives with its name (also custom ones), message, stack and
    // cause"; a name that is not a standard or library class gives an Error with that name.
    assert.ok(error instanceof Error, String(error));
    assert.equal(error.name, "CodedError");
    assert.equal(error.message, "failed with E_CUSTOM");
    assert.match(String(error), /^CodedError: failed with E_CUSTOM/);
    assert.match(String(error.stack), /CodedError: failed with E_CUSTOM[\s\S]*failWithCode/);
    assert.ok(error.cause instanceof RangeError, String(error.cause));
    assert.equal((error.cause as Error).message, "the inner cause");
    assert.equal(error.code, "E_CUSTOM");
    assert.equal(error.retryable, true);
    assert.deepEqual(error.detail, { attempts: 3, hosts: ["a", "b"] });
    // A standard class is rebuilt as that class, with its own properties too.
    const typed: Error & Record<string, unknown> = await failure(
      pool.submit(p.failWithTypeCode, "E_TYPE"),
    );
    assert.ok(typed instanceof TypeError, String(typed));
    assert.equal(typed.name, "TypeError");
    assert.equal(typed.code, "E_TYPE");
  });
}
