import assert from "node:assert/strict";
import {
  CancelledError,
  ProcessPool,
  SerializationError,
  TimeoutError,
  WorkerCrashedError,
} from "../mod.ts";
import { alive, failure, waitUntil, within, work } from "./_helpers.ts";

Deno.test("ProcessPool runs the ThreadPool API in child processes", async () => {
  await using pool = new ProcessPool({ maxWorkers: 2 });
  assert.equal(await within(pool.submit(work.add, 2, 3)), 5);
  assert.equal(await within(pool.submit((x: number) => x * 2, 21)), 42);
  assert.deepEqual(await within(pool.map(work.fib, [1, 2, 3, 10])), [1, 1, 2, 55]);
  assert.deepEqual(await within(pool.starmap(work.add, [[1, 2], [3, 4]])), [3, 7]);
  const out: number[] = [];
  for await (const n of pool.imap(work.fib, [5, 6, 7])) out.push(n);
  assert.deepEqual(out, [5, 8, 13]);
  const pids = new Set<number>();
  for (const info of await within(pool.map(work.whoAmIProcess as never, [1, 2, 3, 4, 5, 6]))) {
    pids.add((info as { pid: number }).pid);
  }
  assert.ok(!pids.has(Deno.pid));
});

Deno.test("Map, Set, Date, BigInt, typed arrays and errors cross to a child and back", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1 });
  const value = {
    map: new Map([["a", 1n]]),
    set: new Set([1, 2]),
    date: new Date(0),
    bytes: new Float64Array([1.5, 2.5]),
    error: new RangeError("inside"),
  };
  const back = await within(pool.submit(work.echo, value)) as typeof value;
  assert.deepEqual(back.map, value.map);
  assert.deepEqual(back.set, value.set);
  assert.equal(back.date.getTime(), 0);
  assert.deepEqual([...back.bytes], [1.5, 2.5]);
  assert.ok(back.error instanceof RangeError);
  const error = await failure(pool.submit(work.fail, "from a child"));
  assert.equal(error.name, "CustomError");
  assert.equal(error.cause.name, "RangeError");
});

for (
  const [how, crash, code, signal] of [
    ["exits", work.exitSelf, 3, null],
    ["is killed with SIGKILL", work.killSelf, null, "SIGKILL"],
  ] as const
) {
  Deno.test(`a child that ${how} mid-task fails only that task and is replaced`, async () => {
    await using pool = new ProcessPool({ maxWorkers: 2 });
    const others = [pool.submit(work.sleep, 200, "a"), pool.submit(work.sleep, 200, "b")];
    const error = await failure(pool.submit(crash as typeof work.exitSelf, 3));
    assert.ok(error instanceof WorkerCrashedError, String(error));
    assert.equal(error.exitCode, code);
    assert.equal(error.signal, signal);
    assert.deepEqual(await within(Promise.all(others)), ["a", "b"]);
    assert.equal(await within(pool.submit(work.add, 1, 1)), 2);
  });
}

Deno.test("tasks behind a crash in the same child run once, elsewhere", async () => {
  const dir = await Deno.makeTempDir();
  const log = `${dir}/log`;
  try {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    // Teach the pool that tasks are tiny, so that it sends several at once.
    await within(
      pool.map((x: number) => x, Array.from({ length: 300 }, (_, i) => i), { chunkSize: 1 }),
    );
    const crash = pool.submit(work.exitSelf, 9);
    const behind = Array.from({ length: 30 }, (_, i) => pool.submit(work.appendLine, log, `t${i}`));
    assert.equal((await failure(crash)).exitCode, 9);
    await within(Promise.all(behind));
    const lines = (await Deno.readTextFile(log)).trim().split("\n").sort();
    assert.deepEqual(lines, Array.from({ length: 30 }, (_, i) => `t${i}`).sort());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a timed-out or cancelled task kills its child; the pool keeps working", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1 });
  const timed = pool.apply(work.busyFor, [60_000], { timeout: 200 });
  const error = await failure(timed);
  assert.ok(error instanceof TimeoutError, String(error));
  const running = pool.submit(work.busyFor, 60_000);
  await waitUntil(() => pool.stats.runningTasks === 1); // its child has started it
  assert.equal(running.cancel(), true);
  await assert.rejects(within(running), CancelledError);
  assert.equal(await within(pool.submit(work.add, 2, 2)), 4);
});

Deno.test("an argument that cannot be sent to a child fails with SerializationError", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1 });
  const error = await failure(pool.submit(work.echo, (() => 1) as never));
  assert.ok(error instanceof SerializationError, String(error));
  assert.match(error.message, /argument 0/);
  assert.equal(await within(pool.submit(work.add, 1, 2)), 3);
});

Deno.test("after shutdown no child process, socket or temporary file is left", async () => {
  const before = new Set(tempEntries());
  const pool = new ProcessPool({ maxWorkers: 2, minWorkers: 2 });
  const pids = (await within(pool.map(work.whoAmIProcess as never, [1, 2, 3, 4])))
    .map((info) => (info as { pid: number }).pid);
  await within(pool.shutdown());
  for (const pid of pids) assert.equal(alive(pid), false, `child ${pid} still running`);
  assert.deepEqual(tempEntries().filter((name) => !before.has(name)), []);
});

Deno.test("bad permissions are named", () => {
  assert.throws(
    () => new ProcessPool({ permissions: { read: 5 } as never }),
    /permissions.read must be a boolean or an array of strings: current value is 5/,
  );
});

function tempEntries(): string[] {
  const dir = Deno.env.get("TMPDIR") ?? "/tmp";
  return [...Deno.readDirSync(dir)].map((entry) => entry.name).filter((name) =>
    name.startsWith("parallel-core-")
  );
}
