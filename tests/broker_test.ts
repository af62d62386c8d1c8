// Shared objects used from child processes through the parent's broker (children without FFI;
// tests/mapped_test.ts has children that map the memory).
import assert from "node:assert/strict";
import {
  Event,
  Mutex,
  ProcessPool,
  ReentrantMutex,
  SerializationError,
  SharedArray,
  tasks,
  Value,
} from "../mod.ts";
import { failure, within } from "./_helpers.ts";

/** Children without FFI: they cannot map this program's memory, so every shared object goes through the broker. */
const BROKERED = "none";

const work = tasks<typeof import("./_broker_tasks.ts")>(
  new URL("./_broker_tasks.ts", import.meta.url),
);

Deno.test("a Mutex excludes two processes", async () => {
  await using pool = new ProcessPool({ maxWorkers: 2, permissions: BROKERED });
  const mutex = new Mutex();
  const value = new Value("int32", 0);
  await within(Promise.all([
    pool.submit(work.lockedIncrements, mutex, value, 20),
    pool.submit(work.lockedIncrements, mutex, value, 20),
  ]));
  assert.equal(value.loadSync(), 40);
  assert.equal(mutex.locked, false);
});

Deno.test("Value.add from two processes is exact", async () => {
  await using pool = new ProcessPool({ maxWorkers: 2, permissions: BROKERED });
  const value = new Value("int32", 0);
  await within(Promise.all([
    pool.submit(work.atomicAdds, value, 300),
    pool.submit(work.atomicAdds, value, 300),
  ]));
  assert.equal(await value.load(), 600);
});

Deno.test("a lock held by a child that dies is released, and the next holder learns of it", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1, permissions: BROKERED });
  const mutex = new Mutex();
  const error = await failure(pool.submit(work.acquireAndDie, mutex));
  assert.equal(error.name, "WorkerCrashedError");
  assert.equal(await within(pool.submit(work.acquireAndReport, mutex)), true);
  assert.equal(await within(pool.submit(work.acquireAndReport, mutex)), false);
  using lease = await mutex.acquire({ timeout: 1_000 });
  assert.equal(lease.previousOwnerDied, false);
});

Deno.test("the parent learns when a child died holding a lock, once", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1, permissions: BROKERED });
  const mutex = new Mutex();
  const error = await failure(pool.submit(work.acquireAndDie, mutex));
  assert.equal(error.name, "WorkerCrashedError");
  const first = mutex.acquireSync({ timeout: 1_000 });
  assert.equal(first.previousOwnerDied, true);
  first[Symbol.dispose]();
  assert.equal(mutex.locked, false);
  using second = await mutex.acquire({ timeout: 1_000 });
  assert.equal(second.previousOwnerDied, false);
  assert.equal(mutex.locked, true);
});

Deno.test("an Event set in the parent wakes a child", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1, permissions: BROKERED });
  const event = new Event();
  const waiting = pool.submit(work.waitForEvent, event);
  setTimeout(() => event.set(), 50);
  assert.equal(await within(waiting), true);
});

Deno.test("methods that must answer at once fail in a child, naming the async form", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1, permissions: BROKERED });
  const message = await within(pool.submit(work.tryImmediate, new Mutex()));
  assert.match(message, /Mutex.tryAcquire cannot answer at once in a child process/);
  assert.match(message, /await mutex.acquire\(\{ timeout: 0 \}\)/);
});

Deno.test("a handle a child returns arrives in the parent as the original object", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1, permissions: BROKERED });
  const mutex = new Mutex();
  assert.equal(await within(pool.submit(work.returnHandle, mutex)), mutex);
});

Deno.test("a SharedArray is filled by a child", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1, permissions: BROKERED });
  const squares = new SharedArray("float64", 4);
  assert.equal(await within(pool.submit(work.fillSquares, squares)), 4);
  assert.deepEqual(squares.toArraySync(), [0, 1, 4, 9]);
});

Deno.test("a ReentrantMutex cannot go to a process, and says why", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1, permissions: BROKERED });
  assert.throws(
    () => pool.submit((m: ReentrantMutex) => m, new ReentrantMutex()),
    (error: Error) =>
      error instanceof SerializationError && /pass a Mutex instead/.test(error.message),
  );
});
