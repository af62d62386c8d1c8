import assert from "node:assert/strict";
import {
  asCompleted,
  BrokenPoolError,
  CancelledError,
  Event,
  SerializationError,
  ThreadPool,
  TimeoutError,
  wait,
} from "../mod.ts";
import { failure, flagSet, sharedFlags, within, work } from "./_helpers.ts";

Deno.test("submit runs a module function and an inline function, typed", async () => {
  await using pool = new ThreadPool({ maxWorkers: 2 });
  const sum: number = await within(pool.submit(work.add, 2, 3));
  assert.equal(sum, 5);
  assert.equal(await within(pool.submit((x: number) => x * 2, 21)), 42);
  assert.equal(await within(pool.submit(work.sleep, 5, "late")), "late");
});

Deno.test("map keeps order with automatic and explicit chunks", async () => {
  await using pool = new ThreadPool({ maxWorkers: 2 });
  const items = Array.from({ length: 1000 }, (_, i) => i);
  const doubled = await within(pool.map((x: number) => x * 2, items));
  assert.deepEqual(doubled, items.map((x) => x * 2));
  assert.deepEqual(await within(pool.map(work.fib, [1, 2, 3, 10], { chunkSize: 3 })), [
    1,
    1,
    2,
    55,
  ]);
  assert.deepEqual(await within(pool.map(work.fib, [])), []);
});

Deno.test("starmap spreads argument lists", async () => {
  await using pool = new ThreadPool({ maxWorkers: 2 });
  assert.deepEqual(await within(pool.starmap(work.add, [[1, 2], [3, 4], [5, 6]])), [3, 7, 11]);
});

Deno.test("imap yields in order; imapUnordered in completion order", async () => {
  await using pool = new ThreadPool({ maxWorkers: 3 });
  const ordered: unknown[] = [];
  for await (const value of pool.imap((ms: number) => ms, [3, 1, 2])) ordered.push(value);
  assert.deepEqual(ordered, [3, 1, 2]);
  const unordered: unknown[] = [];
  // Each item ends when its event is set: 10 at once, 150 once 10 came out, 300 once 150 did.
  const [go300, go10, go150] = [new Event(), new Event(), new Event()];
  const gated = ([go, ms]: [Event, number]) => go.wait({ timeout: 10_000 }).then(() => ms);
  go10.set();
  const items: [Event, number][] = [[go300, 300], [go10, 10], [go150, 150]];
  for await (const value of pool.imapUnordered(gated, items)) {
    unordered.push(value);
    if (value === 10) go150.set();
    if (value === 150) go300.set();
  }
  assert.deepEqual(unordered, [10, 150, 300]);
});

Deno.test("imap pulls input lazily and stops pulling when the loop breaks", async () => {
  await using pool = new ThreadPool({ maxWorkers: 2 });
  let pulled = 0;
  function* naturals() {
    for (let i = 0;; i++) {
      pulled++;
      yield i;
    }
  }
  const seen: number[] = [];
  for await (const value of pool.imap((x: number) => x * 10, naturals())) {
    seen.push(value);
    if (seen.length === 5) break;
  }
  assert.deepEqual(seen, [0, 10, 20, 30, 40]);
  assert.ok(pulled < 20, `pulled ${pulled} items for 5 results`);
});

Deno.test("imap accepts an async iterable", async () => {
  await using pool = new ThreadPool({ maxWorkers: 2 });
  async function* source() {
    for (let i = 1; i <= 4; i++) yield i;
  }
  const out: number[] = [];
  for await (const value of pool.imap(work.fib, source(), { chunkSize: 2 })) out.push(value);
  assert.deepEqual(out, [1, 1, 2, 3]);
});

Deno.test("a task's error arrives with name, message, stack and cause; the worker carries on", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const error = await failure(pool.submit(work.fail, "bad input"));
  assert.equal(error.name, "CustomError");
  assert.equal(error.message, "bad input");
  assert.match(error.stack, /fail/);
  assert.equal(error.cause.name, "RangeError");
  assert.equal(error.cause.message, "the inner cause");
  assert.equal(await within(pool.submit(work.add, 1, 1)), 2);
  assert.equal(pool.stats.crashedWorkers, 0);
});

Deno.test("asCompleted yields tasks in completion order", async () => {
  await using pool = new ThreadPool({ maxWorkers: 3 });
  // Each task ends when its event is set: fast at once, middle once fast came out, slow once
  // middle did (not by sleeps: a worker that starts late would finish its short sleep last).
  const [slowGo, fastGo, middleGo] = [new Event(), new Event(), new Event()];
  const slow = pool.submit(work.afterEvent, slowGo, 300);
  const fast = pool.submit(work.afterEvent, fastGo, 10);
  const middle = pool.submit(work.afterEvent, middleGo, 150);
  fastGo.set();
  const order: unknown[] = [];
  for await (const task of asCompleted([slow, fast, middle])) {
    order.push(task);
    if (task === fast) middleGo.set();
    if (task === middle) slowGo.set();
  }
  assert.deepEqual(order, [fast, middle, slow]);
  assert.equal(await order[0], 10);
});

Deno.test("asCompleted throws TimeoutError when tasks remain after its timeout", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const task = pool.submit(work.sleep, 300);
  await assert.rejects(async () => {
    for await (const _ of asCompleted([task], { timeout: 20 })) { /* none in time */ }
  }, TimeoutError);
  await task;
});

Deno.test("wait honours FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED and timeout", async () => {
  await using pool = new ThreadPool({ maxWorkers: 3 });
  // `slow` ends only when told, after the waits that need it unfinished.
  const slowGo = new Event();
  const fast = pool.submit(work.sleep, 10);
  const slow = pool.submit(work.afterEvent, slowGo, 300);
  const first = await within(wait([fast, slow], { returnWhen: "FIRST_COMPLETED" }));
  assert.deepEqual([...first.done], [fast]);
  assert.deepEqual([...first.pending], [slow]);
  const failing = pool.submit(work.fail, "x");
  const exception = await within(wait([slow, failing], { returnWhen: "FIRST_EXCEPTION" }));
  assert.ok(exception.done.has(failing));
  const timedOut = await within(wait([slow], { timeout: 10 }));
  assert.equal(timedOut.pending.size + timedOut.done.size, 1);
  slowGo.set();
  const all = await within(wait([fast, slow, failing]));
  assert.equal(all.done.size, 3);
  assert.throws(() => wait([fast], { returnWhen: "SOMETIMES" as never }), RangeError);
});

Deno.test("cancel removes a queued task, which never runs", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const flags = sharedFlags();
  const blocker = pool.submit(work.sleep, 100);
  const queued = pool.submit(work.count, flags);
  assert.equal(queued.cancel(), true);
  assert.equal(queued.cancelled, true);
  await assert.rejects(within(queued), CancelledError);
  await blocker;
  assert.equal(await within(pool.submit(work.add, 1, 2)), 3);
  assert.equal(Atomics.load(flags, 0), 0, "the cancelled task ran");
  assert.equal(queued.cancel(), false);
});

Deno.test("cancel fails a running task at once; the task sees currentTask().cancelled and stops", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const flags = sharedFlags();
  const task = pool.submit(work.spinUntilCancelled, flags, 5_000);
  await flagSet(flags, 0);
  assert.equal(task.cancel(), true);
  await assert.rejects(within(task, 100), CancelledError);
  // The pool replaced the worker at once and keeps working.
  assert.equal(await within(pool.submit(work.add, 2, 2), 5_000), 4);
  assert.equal(pool.stats.workers, 1);
  // The abandoned loop polled the flag and stopped.
  await flagSet(flags, 1);
});

Deno.test("cancel aborts a running async task's signal", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const flags = sharedFlags();
  const task = pool.submit(work.awaitAbort, flags);
  await flagSet(flags, 0);
  task.cancel();
  await assert.rejects(within(task), CancelledError);
  await flagSet(flags, 1);
});

Deno.test("an aborted signal cancels a task; an already aborted one cancels at once", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const controller = new AbortController();
  const flags = sharedFlags();
  const task = pool.apply(work.spinUntilCancelled, [flags, 5_000], { signal: controller.signal });
  await flagSet(flags, 0);
  controller.abort(new Error("stop"));
  const error = await failure(task);
  assert.ok(error instanceof CancelledError);
  assert.equal((error.cause as Error).message, "stop");
  const early = pool.apply(work.add, [1, 2], { signal: AbortSignal.abort() });
  await assert.rejects(within(early), CancelledError);
  await flagSet(flags, 1);
});

Deno.test("timeout counts from the start of the run and fails with TimeoutError; the pool keeps its size", async () => {
  await using pool = new ThreadPool({ maxWorkers: 2 });
  const flags = sharedFlags();
  const queuedBehind = pool.apply(work.sleep, [150], { timeout: 5_000 });
  const task = pool.apply(work.spinUntilCancelled, [flags, 5_000], { timeout: 50 });
  const error = await failure(task);
  assert.ok(error instanceof TimeoutError, String(error));
  assert.match(error.message, /timed out after 50 ms/);
  assert.equal(await within(queuedBehind), 150);
  assert.deepEqual(await within(pool.map(work.fib, [5, 6])), [5, 8]);
  assert.ok(pool.stats.workers <= 2);
  await flagSet(flags, 1);
});

Deno.test("shutdown waits for running tasks; cancelPending cancels those not started", async () => {
  const pool = new ThreadPool({ maxWorkers: 1 });
  const flags = sharedFlags();
  const running = pool.submit(work.startThenSleep, flags, 50, "done");
  const waiting = pool.submit(work.sleep, 50, "never");
  await flagSet(flags, 0);
  await within(pool.shutdown({ cancelPending: true }));
  assert.equal(await running, "done");
  await assert.rejects(within(waiting), CancelledError);
  assert.throws(() => pool.submit(work.add, 1, 2), /shut down/);
  assert.equal(pool.stats.workers, 0);
});

Deno.test("an argument that cannot be sent fails that task with SerializationError naming it", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const good = pool.submit(work.add, 1, 2);
  const bad = pool.submit(work.add as never, 1, (() => 2) as never);
  const error = await failure(bad);
  assert.ok(error instanceof SerializationError, String(error));
  assert.match(error.message, /argument 1/);
  assert.match(error.message, /function/);
  assert.equal(await within(good), 3);
});

Deno.test("a result that cannot be sent fails with SerializationError", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const error = await failure(pool.submit(work.returnFunction));
  assert.equal(error.name, "SerializationError");
  assert.match(error.message, /result/);
  assert.equal(await within(pool.submit(work.add, 1, 2)), 3);
});

Deno.test("an inline task using an outer variable points to tasks()", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const factor = 3;
  const error = await failure(pool.submit((x: number) => x * factor, 2));
  assert.equal(error.name, "ReferenceError");
  assert.match(error.message, /"factor"/);
  assert.match(error.message, /tasks\(url\)/);
});

Deno.test("a missing export is named", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const missing = (work as unknown as Record<string, typeof work.add>).nope;
  const error = await failure(pool.submit(missing, 1, 2));
  assert.match(error.message, /no exported function "nope"/);
  const notFunction = (work as unknown as Record<string, typeof work.add>).notAFunction;
  const second = await failure(pool.submit(notFunction, 1, 2));
  assert.match(second.message, /"notAFunction" is number/);
});

Deno.test("transfer moves an ArrayBuffer instead of copying it", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const buffer = new ArrayBuffer(1024);
  const size = await within(pool.apply(work.byteLength, [buffer], { transfer: [buffer] }));
  assert.equal(size, 1024);
  assert.equal(buffer.byteLength, 0);
});

Deno.test("initializer runs in each worker before its tasks", async () => {
  await using pool = new ThreadPool({
    maxWorkers: 2,
    initializer: work.init,
    initArgs: ["ready"],
  });
  assert.deepEqual(await within(pool.map(work.readInit as never, [1, 2, 3, 4])), [
    "ready",
    "ready",
    "ready",
    "ready",
  ]);
});

Deno.test("a failing initializer breaks the pool with BrokenPoolError", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1, initializer: work.failInit });
  const error = await failure(pool.submit(work.add, 1, 2));
  assert.ok(error instanceof BrokenPoolError, String(error));
  assert.equal((error.cause as Error).message, "initializer refused");
  assert.throws(() => pool.submit(work.add, 1, 2), BrokenPoolError);
});

Deno.test("maxTasksPerWorker replaces workers; minWorkers start at once; idleTimeout ends idle ones", async () => {
  await using fresh = new ThreadPool({ maxWorkers: 1, maxTasksPerWorker: 1 });
  const ids = new Set<number>();
  for (let i = 0; i < 3; i++) ids.add((await within(fresh.submit(work.whoAmI))).id);
  assert.equal(ids.size, 3);

  await using warm = new ThreadPool({ maxWorkers: 3, minWorkers: 2 });
  assert.equal(warm.stats.workers, 2);

  await using idle = new ThreadPool({ maxWorkers: 2, idleTimeout: 20 });
  await within(idle.submit(work.add, 1, 1));
  await within(
    new Promise<void>((resolve) => {
      const poll = () => idle.stats.workers === 0 ? resolve() : setTimeout(poll, 10);
      poll();
    }),
  );
});

Deno.test("maxQueue rejects a submission beyond it, and the pool keeps working", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1, maxQueue: 2 });
  const a = pool.submit(work.add, 1, 1);
  const b = pool.submit(work.add, 2, 2);
  assert.throws(() => pool.submit(work.add, 3, 3), /'maxQueue' \(2\)/);
  assert.deepEqual(await within(Promise.all([a, b])), [2, 4]);
  assert.equal(await within(pool.submit(work.add, 3, 3)), 6);
});

Deno.test("stats count what happened", async () => {
  await using pool = new ThreadPool({ maxWorkers: 2 });
  await within(pool.submit(work.add, 1, 1));
  await within(pool.submit(work.fail, "x").then(() => {}, () => {}));
  const stats = pool.stats;
  assert.equal(stats.completedTasks, 1);
  assert.equal(stats.failedTasks, 1);
  assert.equal(stats.pendingTasks, 0);
  assert.equal(stats.runningTasks, 0);
});

Deno.test("a failed task that nobody awaits is not an unhandled rejection", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  pool.submit(work.fail, "ignored");
  assert.equal(await within(pool.submit(work.add, 1, 1)), 2);
});

Deno.test("short tasks queued behind a long one on a busy worker move to an idle worker", async () => {
  await using pool = new ThreadPool({ maxWorkers: 2, minWorkers: 2 });
  // Teach the pool that tasks are tiny, so that it hands each worker many at once.
  await within(pool.map((x: number) => x, Array.from({ length: 2_000 }, (_, i) => i), {
    chunkSize: 1,
  }));
  const flags = sharedFlags();
  // The long task runs until it is cancelled (at most 8 s).
  const long = pool.submit(work.spinUntilCancelled, flags, 8_000);
  const shorts = Array.from({ length: 10 }, (_, i) => pool.submit(work.add, i, 1));
  assert.deepEqual(await within(Promise.all(shorts)), Array.from({ length: 10 }, (_, i) => i + 1));
  assert.equal(long.done, false, "the short tasks waited for the long one");
  long.cancel();
  await flagSet(flags, 1);
});

Deno.test("map and imap are not limited by maxQueue, which bounds submit", async () => {
  await using pool = new ThreadPool({ maxWorkers: 2, maxQueue: 1 });
  assert.deepEqual(
    await within(pool.map((x: number) => x * 2, [1, 2, 3, 4, 5, 6], { chunkSize: 1 })),
    [
      2,
      4,
      6,
      8,
      10,
      12,
    ],
  );
  const out: number[] = [];
  for await (const value of pool.imap((x: number) => x + 1, [1, 2, 3, 4, 5])) out.push(value);
  assert.deepEqual(out, [2, 3, 4, 5, 6]);
});
