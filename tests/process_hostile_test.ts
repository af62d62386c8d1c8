// A child process is untrusted: each test plays a hostile task in a child
// with no permissions, and checks that the parent (run with -A) did nothing
// for it beyond the allowed methods of the objects it was given, ended only
// that child, and went on working.
import assert from "node:assert/strict";
import { Mutex, ProcessPool, Queue, tasks } from "../mod.ts";
import { alive, failure, waitUntil, within } from "./_helpers.ts";

const hostile = tasks<typeof import("./_hostile_tasks.ts")>(
  new URL("./_hostile_tasks.ts", import.meta.url),
);

/** A one-worker pool whose child may do nothing at all. */
function sandboxedPool(): ProcessPool {
  return new ProcessPool({ maxWorkers: 1, permissions: "none" });
}

/** The deadline of a test that moves hundreds of MiB through a pipe: 7 s here, more on a busy day. */
const HUNDREDS_OF_MIB_MS = 60_000;

/** Fails unless `task` failed because its child was ended for `cause`. */
async function assertEndedFor(
  task: PromiseLike<unknown>,
  cause: RegExp,
  ms?: number,
): Promise<void> {
  const error = await failure(task, ms);
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
  await waitUntil(() => pool.stats.crashedWorkers === 1);
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
  await assertEndedFor(pool.submit(hostile.skipOwnTask), /answered as skipped that it had started/);
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

// Found by a review that played the hostile child against the first version of these checks.

Deno.test("an argument list with a constructor of its own does not crash the parent", async () => {
  await using pool = sandboxedPool();
  const queue = new Queue<string>();
  await within(pool.submit(hostile.argsWithConstructor, queue, "item"));
  assert.equal(queue.tryGet()?.value, "item");
  await assertStillWorks(pool);
});

Deno.test("an error message that cannot become a string fails the task, not the parent", async () => {
  await using pool = sandboxedPool();
  const error = await failure(pool.submit(hostile.unprintableErrorMessage));
  assert.equal(error.name, "Error");
  assert.equal(error.message, "");
  await assertStillWorks(pool);
});

Deno.test("a sparse array of length 2**32 - 2 is walked by what it holds", async () => {
  await using pool = sandboxedPool();
  const result = await within(pool.submit(hostile.sparseResult)) as unknown as unknown[];
  assert.equal(result.length, 2 ** 32 - 2);
  assert.equal(result[2 ** 32 - 3], 1);
  assert.equal(await within(pool.submit(hostile.sparseThroughQueue, new Queue())), 2 ** 32 - 2);
  await assertStillWorks(pool);
});

Deno.test("a child's values are never turned into text in the parent", async () => {
  await using pool = sandboxedPool();
  const answer = await within(pool.submit(hostile.dagTimeout, new Queue()));
  assert.match(answer, /^TypeError: .*'timeout' must be a number of milliseconds, not an array/);
  const error = await failure(pool.submit(hostile.dagError));
  assert.equal(error.message, "");
  await assertStillWorks(pool);
});

Deno.test("an answer too large for JSON goes as node:v8; one that cannot go at all is an error", async () => {
  await using pool = sandboxedPool();
  const queue = new Queue<string>();
  // 45 MiB of control characters: 270 MiB as JSON, over the frame limit.
  queue.putSync("\x01".repeat(45 * 1024 * 1024));
  assert.equal(
    await within(pool.submit(hostile.itemLength, queue), HUNDREDS_OF_MIB_MS),
    45 * 1024 * 1024,
  );
  let deep: unknown = 0;
  for (let i = 0; i < 2_000; i++) deep = [deep];
  queue.putSync(deep as never);
  const error = await failure(pool.submit(hostile.itemLength, queue));
  assert.equal(error.name, "SerializationError");
  assert.match(error.message, /Cannot send the answer of get/);
  await assertStillWorks(pool);
});

Deno.test("a child may not hold more than 256 MiB of arguments in waiting calls", async () => {
  await using pool = sandboxedPool();
  const queue = new Queue<Uint8Array>({ maxSize: 1 });
  queue.putSync(new Uint8Array([7]));
  await assertEndedFor(
    pool.submit(hostile.waitingPuts, queue, 10, 30),
    /more than 268435456 bytes of arguments/,
    HUNDREDS_OF_MIB_MS,
  );
  assert.deepEqual(queue.tryGet()?.value, new Uint8Array([7]));
  assert.equal(queue.tryGet(), undefined, "no waiting put of the ended child went through");
  await assertStillWorks(pool);
});
