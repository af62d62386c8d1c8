// A child process is untrusted: each test plays a hostile task in a child
// with no permissions, and checks that the parent (run with -A) did nothing
// for it beyond the allowed methods of the objects it was given, ended only
// that child, and went on working.
import assert from "node:assert/strict";
import { Mutex, ProcessPool, Queue, tasks } from "../mod.ts";
import { alive, failure, within } from "./_helpers.ts";

const hostile = tasks<typeof import("./_hostile_tasks.ts")>(
  new URL("./_hostile_tasks.ts", import.meta.url),
);

/** A one-worker pool whose child may do nothing at all. */
function sandboxedPool(): ProcessPool {
  return new ProcessPool({ maxWorkers: 1, permissions: "none" });
}

/** Fails unless `task` failed because its child was ended for `cause`. */
async function assertEndedFor(task: PromiseLike<unknown>, cause: RegExp): Promise<void> {
  const error = await failure(task);
  assert.equal(error.name, "WorkerCrashedError", error.stack);
  assert.match(String(error.cause?.message), cause);
}

/** The pool still runs tasks after a child was ended. */
async function assertStillWorks(pool: ProcessPool): Promise<void> {
  assert.equal(await within(pool.submit((x: number) => x * 2, 21)), 42);
}

Deno.test("the parent imports no module a child names, in a call or a result", async () => {
  await using pool = sandboxedPool();
  const queue = new Queue<{ carry: Mutex }>();
  const mutex = new Mutex();
  const marker = `owned-${crypto.randomUUID()}`;
  const result = await within(pool.submit(hostile.importThroughModuleLists, queue, mutex, marker));
  assert.equal((globalThis as Record<string, unknown>)[marker], undefined);
  // The call and the result themselves did their job.
  assert.equal(result.carry, mutex);
  assert.ok(queue.tryGet()?.value);
});

Deno.test("a child cannot reach a shared object it was not given by forging a handle", async () => {
  await using pool = sandboxedPool();
  const secret = new Queue<string>();
  secret.putSync("secret");
  // Another task is given `secret`, so the parent knows it.
  await within(pool.submit((q: Queue<string>) => q.put("also secret"), secret));
  await assertEndedFor(pool.submit(hostile.forgeHandles, new Queue()), /not given/);
  assert.equal(secret.tryGet()?.value, "secret");
  assert.equal(secret.tryGet()?.value, "also secret");
  await assertStillWorks(pool);
});

Deno.test("a child may call only the methods its objects list", async () => {
  await using pool = sandboxedPool();
  for (const method of ["toString", "constructor", "putSync", "tryGet", "__proto__"]) {
    await assertEndedFor(
      pool.submit(hostile.callUnlisted, new Queue(), method),
      new RegExp(`may not call.*"${method}"`),
    );
  }
  await assertStillWorks(pool);
});

Deno.test("a result for a task the child was not given ends that child", async () => {
  await using pool = sandboxedPool();
  await assertEndedFor(pool.submit(hostile.resultForAnotherTask), /task it was not given/);
  await assertStillWorks(pool);
});

Deno.test("a second result for a task ends that child; the first one stands", async () => {
  await using pool = sandboxedPool();
  const pid = await within(pool.submit(hostile.resultTwice));
  await within(waitUntil(() => pool.stats.crashedWorkers === 1));
  assert.equal(alive(pid), false);
  await assertStillWorks(pool);
});

Deno.test("a second start for a task ends that child", async () => {
  await using pool = sandboxedPool();
  await assertEndedFor(pool.submit(hostile.startTwice), /had started/);
  await assertStillWorks(pool);
});

Deno.test("a task answered as skipped, which the parent never withdrew, ends that child", async () => {
  await using pool = sandboxedPool();
  await assertEndedFor(pool.submit(hostile.skipOwnTask), /unknown status 2/);
  await assertStillWorks(pool);
});

Deno.test("a message of an unknown type ends that child", async () => {
  await using pool = sandboxedPool();
  await assertEndedFor(pool.submit(hostile.unknownMessage), /unknown message/);
  await assertStillWorks(pool);
});

Deno.test("a frame that does not decode ends that child", async () => {
  await using pool = sandboxedPool();
  await assertEndedFor(pool.submit(hostile.garbageFrame), /does not decode/);
  await assertStillWorks(pool);
});

Deno.test("a frame longer than the limit ends that child before it is read", async () => {
  await using pool = sandboxedPool();
  await assertEndedFor(pool.submit(hostile.oversizedFrame), /frame of \d+ bytes.*limit/);
  await assertStillWorks(pool);
});

Deno.test("absurd nesting ends that child", async () => {
  await using pool = sandboxedPool();
  await assertEndedFor(pool.submit(hostile.absurdNesting), /nested deeper/);
  await assertStillWorks(pool);
});

Deno.test("an error's name and properties from a child are only data", async () => {
  await using pool = sandboxedPool();
  for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
    const error = await failure(pool.submit(hostile.hostileError, name));
    assert.ok(error instanceof Error);
    assert.equal(Object.getPrototypeOf(error), Error.prototype);
    assert.equal(error.name, name);
    assert.equal(error.message, "hostile");
    assert.equal("polluted" in error, false);
  }
  await assertStillWorks(pool);
});

Deno.test("a child may not leave more than 10,000 calls waiting in the parent", async () => {
  await using pool = sandboxedPool();
  const queue = new Queue<number>();
  await assertEndedFor(pool.submit(hostile.floodCalls, queue, 10_001), /more than 10000 calls/);
  // Its waits ended with it: nothing put now is taken by a dead child.
  await queue.put(1);
  assert.equal(queue.tryGet()?.value, 1);
  await assertStillWorks(pool);
});

async function waitUntil(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 10));
}
