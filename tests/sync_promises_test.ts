// Promises of sync/ that a race can break: one holder at a time, first come first served,
// no spare signal. Every test asserts what happened (who held the lock, in which order,
// what a wait returned), never how long it took.
import assert from "node:assert/strict";
import { tasks, Thread } from "../mod.ts";
import { Condition, Mutex } from "../sync/mod.ts";
import { describe } from "../internal/codec.ts";
import { bufferOf, type SharedRef } from "../internal/memory.ts";
import { flagSet, sharedFlags, waitUntil, within } from "./_helpers.ts";

const work = tasks<typeof import("./_sync_tasks.ts")>(
  new URL("./_sync_tasks.ts", import.meta.url),
);

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How an acquire ended: "acquired" (the lease is released at once) or the error's name. */
async function outcome(acquiring: Promise<Disposable>): Promise<string> {
  try {
    (await acquiring)[Symbol.dispose]();
    return "acquired";
  } catch (error) {
    return (error as Error).name;
  }
}

for (const order of ["release() then abort()", "abort() then release()"]) {
  Deno.test(`Mutex: ${order} back to back never leaves two holders`, async () => {
    for (let round = 0; round < 10; round++) {
      const mutex = new Mutex();
      assert.ok(mutex.tryAcquire());
      const controller = new AbortController();
      const waiter = mutex.acquire({ signal: controller.signal });
      if (round % 2 === 1) await delay(1); // asleep in the line for a turn or more
      if (order.startsWith("release")) {
        mutex.release();
        controller.abort();
      } else {
        controller.abort();
        mutex.release();
      }
      // The waiter either got the lock (then it holds it) or gave up; never both, and the
      // lock is not lost either way.
      const waited = await within(waiter.then((lease) => lease, (error: Error) => error));
      const waiterHolds = !(waited instanceof Error);
      if (!waiterHolds) assert.equal(waited.name, "AbortError");
      const tried = mutex.tryAcquire();
      const next = await within(outcome(mutex.acquire({ timeout: 20 })));
      const holders = [waiterHolds, tried !== undefined, next === "acquired"].filter(Boolean);
      assert.equal(holders.length, 1, `round ${round}: holders ${JSON.stringify(holders)}`);
      if (next !== "acquired") assert.equal(next, "TimeoutError");
      // Whoever holds it releases it, and the mutex is free and works.
      if (waiterHolds) (waited as Disposable)[Symbol.dispose]();
      tried?.[Symbol.dispose]();
      assert.equal(mutex.locked, false);
      assert.equal(await within(outcome(mutex.acquire({ timeout: 1_000 }))), "acquired");
    }
  });
}

/** The mutex's permit words (sync/_permits.ts): COUNT is minus the callers in line. */
function permitWords(mutex: Mutex): Int32Array {
  return new Int32Array(bufferOf(mutex[describe]({ transport: "thread" }).state as SharedRef));
}

/** Waits until `n` callers are in the mutex's line. */
async function inLine(words: Int32Array, n: number): Promise<void> {
  const end = Date.now() + 10_000;
  while (Atomics.load(words, 0) !== -n) {
    if (Date.now() > end) throw new Error(`${n} callers did not join the line`);
    await delay(2);
  }
}

const LINES: Record<string, ("thread" | "main")[]> = {
  "three threads": ["thread", "thread", "thread"],
  "three async waiters on the main thread": ["main", "main", "main"],
  "threads and the main thread mixed": ["thread", "main", "thread"],
};

for (const [label, kinds] of Object.entries(LINES)) {
  Deno.test(`Mutex: B, C and D waiting in that order get the lock as B, C, D (${label})`, async () => {
    const mutex = new Mutex();
    const words = permitWords(mutex);
    const order = sharedFlags(4); // [0]: places taken; then who took the lock, in turn
    const gate = sharedFlags(4); // [0]: threads started; [me]: go
    const holder = mutex.tryAcquire()!;
    const waiters: Promise<unknown>[] = [];
    // The threads start first, and each joins the line when told: the line then forms in
    // 150 ms, not over several thread starts (on mapped memory, a caller asleep for a second
    // sleeps again at the back of the line).
    const threads = kinds.filter((kind) => kind === "thread").length;
    for (const [i, kind] of kinds.entries()) {
      if (kind !== "thread") continue;
      const thread = new Thread({
        target: work.acquireInTurn,
        args: [mutex, order, i + 1, gate],
      });
      waiters.push(thread.start().join());
    }
    await waitUntil(() => Atomics.load(gate, 0) === threads);
    for (const [i, kind] of kinds.entries()) {
      const me = i + 1; // B = 1, C = 2, D = 3
      if (kind === "thread") {
        Atomics.store(gate, me, 1);
        Atomics.notify(gate, me);
      } else {
        waiters.push(
          mutex.acquire({ timeout: 10_000 }).then((lease) => {
            order[1 + Atomics.add(order, 0, 1)] = me;
            lease[Symbol.dispose]();
          }),
        );
      }
      // The next one comes only once this one is in the line and has gone to sleep.
      await inLine(words, me);
      await delay(50);
    }
    holder[Symbol.dispose]();
    await within(Promise.all(waiters));
    assert.deepEqual([...order], [3, 1, 2, 3]);
    assert.equal(mutex.locked, false);
  });
}

const NOTIFIES: Record<string, (condition: Condition) => void> = {
  "notify() twice": (condition) => {
    condition.notify();
    condition.notify();
  },
  "notify(2)": (condition) => condition.notify(2),
  "notifyAll() twice": (condition) => {
    condition.notifyAll();
    condition.notifyAll();
  },
};

for (const [how, notify] of Object.entries(NOTIFIES)) {
  Deno.test(`Condition: ${how} with one waiter leaves no spare signal`, async () => {
    const condition = new Condition();
    using _held = await condition.acquire();
    const waited = condition.wait({ timeout: 10_000 }); // lets go of the lock while it waits
    {
      using _lock = await within(condition.acquire());
      notify(condition);
    }
    assert.equal(await within(waited), true); // and holds the lock again
    // Nobody notifies now: a later wait must time out, not find a signal left over.
    assert.equal(await within(condition.wait({ timeout: 50 })), false);
  });
}

Deno.test("Condition: two notify() calls with one waiting thread leave no spare signal", async () => {
  const condition = new Condition();
  const flags = sharedFlags(1);
  const waiter = new Thread({ target: work.conditionWait, args: [condition, flags, 10_000] })
    .start();
  await flagSet(flags, 0); // it holds the lock and is about to wait
  {
    // Taken only once the thread has let go of it inside waitSync.
    using _lock = await within(condition.acquire({ timeout: 10_000 }));
    condition.notify();
    condition.notify();
  }
  assert.equal(await within(waiter.join()), true);
  {
    using _lock = await within(condition.acquire());
    assert.equal(await within(condition.wait({ timeout: 50 })), false);
  }
  const second = new Thread({ target: work.conditionWait, args: [condition, flags, 50] }).start();
  assert.equal(await within(second.join()), false);
});
