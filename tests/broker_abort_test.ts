// Waits a child makes in the parent end when it aborts them or dies.
import assert from "node:assert/strict";
import { Mutex, ProcessPool, Queue, Semaphore, TimeoutError } from "../mod.ts";
import { failure, within } from "./_helpers.ts";

Deno.test("a child that dies while its get waits in the parent takes no item", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1 });
  const queue = new Queue<number>();
  const dying = pool.submit(async (q: Queue<number>) => {
    setTimeout(() => Deno.exit(1), 100);
    return await q.get();
  }, queue);
  assert.equal((await failure(dying)).name, "WorkerCrashedError");
  await queue.put(42);
  assert.equal(await queue.get({ timeout: 1_000 }), 42);
});

Deno.test("a child that dies while its acquire waits leaves the lock free once released", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1 });
  const mutex = new Mutex();
  const held = await mutex.acquire();
  const dying = pool.submit(async (m: Mutex) => {
    setTimeout(() => Deno.exit(1), 100);
    await m.acquire();
  }, mutex);
  await failure(dying);
  held[Symbol.dispose]();
  using again = await mutex.acquire({ timeout: 1_000 });
  assert.equal(again.previousOwnerDied, false);
});

Deno.test("a signal or timeout given in a child ends the wait in the parent", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1 });
  const queue = new Queue<number>();
  const name = await within(pool.submit(async (q: Queue<number>) => {
    try {
      await q.get({ signal: AbortSignal.timeout(50) });
      return "got an item";
    } catch (error) {
      return (error as Error).name;
    }
  }, queue));
  assert.equal(name, "TimeoutError");
  const error = await failure(pool.submit(
    async (m: Mutex) => {
      await m.acquire();
      await m.acquire({ timeout: 50 });
    },
    new Mutex(),
  ));
  assert.ok(error instanceof TimeoutError, String(error));
  await queue.put(7);
  assert.equal(await queue.get({ timeout: 1_000 }), 7);
});

Deno.test("release() by a child is not undone when the child exits", async () => {
  const semaphore = new Semaphore(1);
  {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    await within(pool.submit(async (s: Semaphore) => {
      await s.acquire();
      s.release();
    }, semaphore));
  }
  using first = await semaphore.acquire({ timeout: 1_000 });
  assert.equal(semaphore.tryAcquire(), undefined, "a second permit appeared");
  assert.equal(first.previousOwnerDied, false);
});
