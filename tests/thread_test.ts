import assert from "node:assert/strict";
import {
  CancelledError,
  currentThread,
  tasks,
  Thread,
  TimeoutError,
  WorkerCrashedError,
} from "../mod.ts";
import { failure, flagSet, runProgram, sharedFlags, within, work } from "./_helpers.ts";

Deno.test("a Thread runs its target once and join returns the value", async () => {
  const thread = new Thread({ target: work.add, args: [20, 22], name: "adder" });
  assert.equal(thread.name, "adder");
  assert.equal(thread.isAlive, false);
  thread.start();
  assert.equal(thread.isAlive, true);
  const sum: number = await within(thread.join());
  assert.equal(sum, 42);
  assert.equal(thread.isAlive, false);
});

Deno.test("currentThread() names the thread inside it and MainThread outside", async () => {
  const thread = new Thread({ target: work.whoAmI, name: "khanh thread" }).start();
  const inside = await within(thread.join());
  assert.equal(inside.name, "khanh thread");
  assert.ok(inside.id > 0);
  assert.deepEqual(currentThread(), { name: "MainThread", id: 0 });
});

Deno.test("threads get default names Thread-N", () => {
  const thread = new Thread({ target: () => 1 });
  assert.match(thread.name, /^Thread-\d+$/);
});

Deno.test("join rejects with the target's error, or WorkerCrashedError if the thread dies", async () => {
  const failing = new Thread({ target: work.fail, args: ["nope"] }).start();
  const error = await failure(failing.join());
  assert.equal(error.name, "CustomError");
  const dying = new Thread({ target: work.exitSelf, args: [5] }).start();
  const crash = await failure(dying.join());
  assert.ok(crash instanceof WorkerCrashedError);
  assert.equal(crash.exitCode, 5);
});

Deno.test("start twice throws; join before start rejects", async () => {
  const thread = new Thread({ target: () => 1 });
  await assert.rejects(thread.join(), /has not been started/);
  thread.start();
  assert.throws(() => thread.start(), /already started/);
  assert.equal(await within(thread.join()), 1);
});

Deno.test("terminate cancels a running thread; a polling loop stops", async () => {
  const flags = sharedFlags();
  const thread = new Thread({ target: work.spinUntilCancelled, args: [flags, 5_000] }).start();
  await flagSet(flags, 0);
  await within(thread.terminate());
  await assert.rejects(thread.join(), CancelledError);
  await flagSet(flags, 1);
  assert.equal(thread.isAlive, false);
});

Deno.test("bad Thread options are named", () => {
  assert.throws(() => new Thread({} as never), /'target' is required/);
  assert.throws(
    () => new Thread({ target: () => 1, args: 5 as never }),
    /'args' must be an array: current value is 5/,
  );
  assert.throws(
    () => new Thread({ target: () => 1, nmae: "x" } as never),
    /unknown option 'nmae'/,
  );
});

Deno.test("join({ timeout }) rejects with TimeoutError and the thread keeps running", async () => {
  const flags = sharedFlags(3);
  const stuck = tasks<typeof import("./_promise_tasks.ts")>(
    new URL("./_promise_tasks.ts", import.meta.url),
  ).stuckUntil;
  const thread = new Thread({ target: stuck, args: [flags, 0, 1, 2, 10_000], name: "stuck" });
  assert.throws(() => thread.join({ timout: 5 } as never), {
    name: "TypeError",
    message: /Thread\.join: unknown option 'timout'/,
  });
  thread.start();
  await flagSet(flags, 0);
  const error = await failure(thread.join({ timeout: 10 }));
  assert.ok(error instanceof TimeoutError);
  assert.equal(error.message, `Thread "stuck" did not end within 10 ms (it keeps running)`);
  assert.equal(thread.isAlive, true);
  assert.equal(Atomics.load(flags, 2), 0);
  assert.throws(() => thread.join({ timeout: -1 }), { name: "RangeError", message: /'timeout'/ });
  Atomics.store(flags, 1, 1);
  Atomics.notify(flags, 1);
  assert.equal(typeof await within(thread.join({ timeout: 10_000 })), "number");
  assert.equal(Atomics.load(flags, 2), 1);
});

Deno.test("join({ timeout }) that resolves first leaves no timer keeping the program alive", async () => {
  const { code, stdout, stderr } = await runProgram(
    `
    import { Thread } from "@parallel/core";
    const thread = new Thread({ target: (n: number) => n + 1, args: [1] }).start();
    console.log(await thread.join({ timeout: 60_000 }));
  `,
    15_000,
  );
  assert.equal(code, 0, stderr);
  assert.equal(stdout.trim(), "2");
});
