// After shutdown() or `await using`, a program exits on its own.
import assert from "node:assert/strict";
import { runProgram } from "./_helpers.ts";

Deno.test("a program using await using exits on its own", async () => {
  const { code, stdout, stderr } = await runProgram(`
    import { ThreadPool } from "@parallel/core";
    await using pool = new ThreadPool({ maxWorkers: 2, minWorkers: 2 });
    console.log(await pool.map((x: number) => x * 2, [1, 2, 3]));
  `);
  assert.equal(code, 0, stderr);
  assert.equal(stdout.trim(), "[ 2, 4, 6 ]");
});

Deno.test("a program that calls shutdown() after cancel and timeout exits on its own", async () => {
  const { code, stdout, stderr } = await runProgram(`
    import { ThreadPool } from "@parallel/core";
    const pool = new ThreadPool({ maxWorkers: 2 });
    const sleep = (ms: number) => new Promise((r) => setTimeout(() => r(ms), ms));
    const long = pool.submit(sleep, 60_000);
    const timed = pool.apply(sleep, [60_000], { timeout: 50 });
    await new Promise((r) => setTimeout(r, 100));
    long.cancel();
    const results = await Promise.allSettled([long, timed]);
    console.log(results.map((r) => r.status === "rejected" ? r.reason.name : r.value).join(" "));
    await pool.shutdown();
  `);
  assert.equal(code, 0, stderr);
  assert.equal(stdout.trim(), "CancelledError TimeoutError");
});

Deno.test("a program with a finished Thread exits on its own", async () => {
  const { code, stdout, stderr } = await runProgram(`
    import { Thread } from "@parallel/core";
    const thread = new Thread({ target: (n: number) => n + 1, args: [1] }).start();
    console.log(await thread.join());
  `);
  assert.equal(code, 0, stderr);
  assert.equal(stdout.trim(), "2");
});

for (const Pool of ["ThreadPool", "ProcessPool"]) {
  Deno.test(`a program that never shuts its ${Pool} down ends once its tasks have settled`, async () => {
    const { code, stdout, stderr } = await runProgram(`
      import { ${Pool} } from "@parallel/core";
      const pool = new ${Pool}({ maxWorkers: 2, minWorkers: 1 });
      console.log(await pool.map((x: number) => x * 2, [1, 2, 3]));
      // A task nobody awaits still runs to its end before the program does.
      pool.submit(async (ms: number) => {
        await new Promise((r) => setTimeout(r, ms));
        console.log("unawaited task done");
      }, 200);
      // Work that arrives after the pool went idle still runs.
      setTimeout(async () => console.log(await pool.submit((x: number) => x + 1, 41)), 400);
    `);
    assert.equal(code, 0, stderr);
    assert.deepEqual(stdout.trim().split("\n"), ["[ 2, 4, 6 ]", "unawaited task done", "42"]);
  });
}

for (const Kind of ["Thread", "Process"]) {
  Deno.test(`a program waits for a ${Kind} it never joined, then ends`, async () => {
    const { code, stdout, stderr } = await runProgram(`
      import { ${Kind} } from "@parallel/core";
      new ${Kind}({
        target: async (ms: number) => {
          await new Promise((r) => setTimeout(r, ms));
          console.log("target done");
        },
        args: [200],
      }).start();
      console.log("main done");
    `);
    assert.equal(code, 0, stderr);
    assert.deepEqual(stdout.trim().split("\n"), ["main done", "target done"]);
  });
}
