import assert from "node:assert/strict";
import {
  CancelledError,
  currentProcess,
  Process,
  TimeoutError,
  WorkerCrashedError,
} from "../mod.ts";
import { failure, within, work } from "./_helpers.ts";

Deno.test("a Process runs its target in a child and join returns the value", async () => {
  const child = new Process({ target: work.whoAmIProcess, name: "khanh process" });
  assert.equal(child.pid, null);
  child.start();
  assert.equal(typeof child.pid, "number");
  assert.notEqual(child.pid, Deno.pid);
  const inside = await within(child.join());
  assert.equal(inside.name, "khanh process");
  assert.equal(inside.pid, child.pid);
  assert.equal(child.exitCode, 0);
  assert.equal(child.signal, null);
  assert.equal(child.isAlive, false);
  assert.deepEqual(currentProcess(), { name: "MainProcess", id: 0 });
});

Deno.test("a Process that exits before its target returns rejects with WorkerCrashedError", async () => {
  const child = new Process({ target: work.exitSelf, args: [4] }).start();
  const error = await failure(child.join());
  assert.ok(error instanceof WorkerCrashedError, String(error));
  assert.equal(error.exitCode, 4);
  assert.equal(error.signal, null);
  assert.equal(child.exitCode, 4);
});

Deno.test("kill() ends a process with a signal, which join reports", async () => {
  const child = new Process({ target: work.busyFor, args: [10_000] }).start();
  await new Promise((resolve) => setTimeout(resolve, 300));
  child.kill("SIGKILL");
  const error = await failure(child.join());
  assert.ok(error instanceof WorkerCrashedError, String(error));
  assert.equal(error.signal, "SIGKILL");
  assert.equal(error.exitCode, null);
  assert.equal(child.signal, "SIGKILL");
});

Deno.test("terminate() stops a process stuck in a synchronous loop", async () => {
  const child = new Process({ target: work.busyFor, args: [60_000] }).start();
  await new Promise((resolve) => setTimeout(resolve, 200));
  await within(child.terminate());
  await assert.rejects(child.join(), CancelledError);
});

Deno.test("bad Process options are named", () => {
  assert.throws(() => new Process({} as never), /'target' is required/);
  assert.throws(
    () => new Process({ target: () => 1, permissions: "some" as never }),
    /'permissions' must be "inherit", "none" or an object: current value is "some"/,
  );
  assert.throws(
    () => new Process({ target: () => 1, permissions: { disk: true } as never }),
    /unknown permission 'disk'/,
  );
});

Deno.test("join({ timeout }) rejects with TimeoutError and the process keeps running", async () => {
  const child = new Process({ target: work.sleep, args: [500, "slept"], name: "sleeper" }).start();
  const error = await failure(child.join({ timeout: 10 }));
  assert.ok(error instanceof TimeoutError);
  assert.equal(error.message, `Process "sleeper" did not end within 10 ms (it keeps running)`);
  assert.equal(child.isAlive, true);
  assert.equal(await within(child.join({ timeout: 10_000 })), "slept");
  assert.equal(child.exitCode, 0);
});
