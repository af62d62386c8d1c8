// pipe(): two connected ends, on the main thread, in threads and in processes.
import assert from "node:assert/strict";
import { pipe, type PipeEnd, ProcessPool, QueueClosedError, Thread } from "../mod.ts";
import { failure, runProgram, within } from "./_helpers.ts";

Deno.test("pipe: each end receives what the other sent, once and in order; poll takes nothing", async () => {
  const [a, b] = pipe<unknown>();
  assert.equal(await a.poll(), false);
  assert.equal(b.pollSync(), false);
  for (let i = 0; i < 100; i++) await a.send({ i });
  b.sendSync("back");
  assert.equal(await b.poll(), true);
  assert.equal(await b.poll(), true, "poll took the value");
  for (let i = 0; i < 100; i++) assert.deepEqual(await b.recv({ timeout: 1_000 }), { i });
  assert.equal(await b.poll(), false);
  assert.equal(a.pollSync(), true);
  assert.equal(a.recvSync(), "back");
  // A poll that waits sees a value sent meanwhile, and leaves it.
  setTimeout(() => a.sendSync("late"), 20);
  assert.equal(await within(b.poll(10_000)), true);
  assert.equal(await b.recv({ timeout: 0 }), "late");
  await assert.rejects(b.poll(-1), { name: "RangeError", message: /'timeout'/ });
  a.close();
});

Deno.test("pipe: close ends both ways; what was sent first still arrives", async () => {
  const [a, b] = pipe<number>();
  await a.send(1);
  a.close();
  assert.equal(await b.poll(), true);
  assert.equal(await b.recv(), 1);
  assert.equal(await b.poll(), true, "a closed pipe answers recv at once");
  await assert.rejects(b.recv(), QueueClosedError);
  await assert.rejects(b.send(2), QueueClosedError);
  assert.throws(() => a.sendSync(3), QueueClosedError);
  const seen: number[] = [];
  for await (const n of b) seen.push(n);
  assert.deepEqual(seen, []);
});

Deno.test("pipe: an end in a thread talks back, in order", async () => {
  const [here, there] = pipe<number>();
  const echo = new Thread({
    target: (end: PipeEnd<number>) => {
      for (;;) {
        let n: number;
        try {
          n = end.recvSync({ timeout: 10_000 });
        } catch (error) {
          if ((error as Error).name === "QueueClosedError") return "closed";
          throw error;
        }
        end.sendSync(n + 1);
      }
    },
    args: [there],
  }).start();
  for (let i = 0; i < 1_000; i++) await here.send(i);
  for (let i = 0; i < 1_000; i++) assert.equal(await here.recv({ timeout: 10_000 }), i + 1);
  here.close();
  assert.equal(await within(echo.join()), "closed");
});

Deno.test("pipe: an end in a child process sends, receives, polls and iterates through the broker", async () => {
  // A child without FFI: the broker (one with FFI uses the end directly: tests/mapped_test.ts).
  await using pool = new ProcessPool({ maxWorkers: 1, permissions: "none" });
  const [here, there] = pipe<number>();
  const child = pool.submit(async (end: PipeEnd<number>) => {
    let total = 0;
    const waited = await end.poll(10_000);
    for await (const n of end) {
      total += n;
      await end.send(total);
    }
    let sync = "";
    try {
      end.recvSync();
    } catch (error) {
      sync = (error as Error).message;
    }
    return { waited, total, sync };
  }, there);
  for (const n of [1, 2, 3]) await here.send(n);
  const sums = [];
  for (let i = 0; i < 3; i++) sums.push(await here.recv({ timeout: 10_000 }));
  assert.deepEqual(sums, [1, 3, 6]);
  here.close();
  const { waited, total, sync } = await within(child);
  assert.equal(waited, true);
  assert.equal(total, 6);
  assert.match(sync, /await end\.recv\(options\)/);
});

Deno.test("pipe: a dead child's end takes nothing: what it did not receive is still there", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1 });
  const [here, there] = pipe<string>();
  await here.send("first");
  await here.send("second");
  const error = await failure(pool.submit(async (end: PipeEnd<string>) => {
    await end.recv();
    Deno.exit(3);
  }, there));
  assert.equal(error.name, "WorkerCrashedError");
  assert.equal(await there.recv({ timeout: 1_000 }), "second");
  here.close();
});

Deno.test("pipe: a child that dies while its poll waits in the parent does not keep the program alive", async () => {
  const { code, stdout, stderr } = await runProgram(
    `
    import { pipe, ProcessPool } from "@parallel/core";
    const pool = new ProcessPool({ maxWorkers: 1 });
    const [here, there] = pipe();
    const task = pool.submit((end) => {
      end.poll(Infinity); // waits in the parent, through the broker
      return new Promise(() => setTimeout(() => Deno.exit(3), 300));
    }, there);
    console.log(await task.then(() => "ok", (error) => error.name));
  `,
    15_000,
  );
  assert.equal(code, 0, stderr);
  assert.equal(stdout.trim(), "WorkerCrashedError");
});
