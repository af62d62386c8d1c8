// LifoQueue and PriorityQueue: the order a get takes, checked against a model.
import assert from "node:assert/strict";
import { LifoQueue, PriorityQueue, ProcessPool, QueueClosedError, Thread } from "../mod.ts";
import { within } from "./_helpers.ts";

/** A small deterministic random source, so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed / 2_147_483_648;
  };
}

/** Items of every frame kind and of many sizes (long strings make the ring grow and wrap). */
function itemFor(n: number, next: () => number): unknown {
  switch (n % 6) {
    case 0:
      return n;
    case 1:
      return n + 0.5;
    case 2:
      return `s${n}`;
    case 3:
      return `${n}:${"x".repeat(Math.floor(next() * 3_000))}`;
    case 4:
      return { n, list: Array.from({ length: Math.floor(next() * 50) }, (_, i) => i) };
    default:
      return n % 4 === 1 ? null : n % 4 === 3 ? undefined : n % 8 === 1;
  }
}

for (const kind of ["LifoQueue", "PriorityQueue"] as const) {
  Deno.test(`${kind}: 30,000 random puts and gets match a model, through growth, wrap and compaction`, () => {
    const next = random(kind.length);
    const queue = kind === "LifoQueue" ? new LifoQueue<unknown>() : new PriorityQueue<unknown>();
    const model: { priority: number; seq: number; item: unknown }[] = [];
    let seq = 0;
    const take = () => {
      if (kind === "LifoQueue") return model.pop()!;
      let best = 0;
      for (let i = 1; i < model.length; i++) {
        const a = model[i];
        const b = model[best];
        if (a.priority < b.priority || (a.priority === b.priority && a.seq < b.seq)) best = i;
      }
      return model.splice(best, 1)[0];
    };
    for (let op = 0; op < 30_000; op++) {
      // Phases of mostly puts and mostly gets, so the queue grows large and empties again.
      const putting = Math.floor(op / 3_000) % 2 === 0 ? next() < 0.7 : next() < 0.3;
      if (putting || model.length === 0) {
        const item = itemFor(seq, next);
        const priority = Math.floor(next() * 10) - 5;
        if (kind === "PriorityQueue") (queue as PriorityQueue<unknown>).putSync(item, { priority });
        else queue.putSync(item);
        model.push({ priority, seq: seq++, item });
      } else {
        const expected = take();
        assert.deepEqual(queue.getSync({ timeout: 0 }), expected.item, `op ${op}`);
      }
      assert.equal(queue.size, model.length);
    }
    while (model.length > 0) assert.deepEqual(queue.getSync({ timeout: 0 }), take().item);
    assert.equal(queue.tryGet(), undefined);
  });
}

Deno.test("PriorityQueue: a ring that wraps and then grows keeps every item where its index says", () => {
  const queue = new PriorityQueue<string>();
  const item = (n: number) => `${n}:`.padEnd(1_000, "x");
  // 60 frames of about 1 KiB in the 64 KiB ring, the oldest first out: the 30 oldest go, new
  // frames wrap to the start of the ring, then one of 40 KiB makes it grow while wrapped.
  for (let n = 0; n < 60; n++) queue.putSync(item(n), { priority: n });
  for (let n = 0; n < 30; n++) assert.equal(queue.getSync({ timeout: 0 }), item(n));
  for (let n = 60; n < 80; n++) queue.putSync(item(n), { priority: n % 2 ? n : n - 45 });
  queue.putSync("big".padEnd(40_000, "y"), { priority: 50.5 });
  const expected = [
    ...Array.from({ length: 30 }, (_, i) => ({ n: 30 + i, p: 30 + i })),
    ...Array.from({ length: 20 }, (_, i) => 60 + i).map((n) => ({ n, p: n % 2 ? n : n - 45 })),
  ].sort((a, b) => a.p - b.p || a.n - b.n);
  const order = expected.map(({ n }) => item(n));
  order.splice(expected.findIndex(({ p }) => p > 50.5), 0, "big".padEnd(40_000, "y"));
  for (const want of order) assert.equal(queue.getSync({ timeout: 0 }), want);
  assert.equal(queue.size, 0);
});

Deno.test("LifoQueue: newest first, with maxSize, tryGet and close", async () => {
  const stack = new LifoQueue<number>({ maxSize: 3 });
  for (const n of [1, 2, 3]) assert.equal(stack.tryPut(n), true);
  assert.equal(stack.tryPut(4), false);
  assert.equal(await stack.get(), 3);
  await stack.put(5);
  assert.deepEqual([stack.getSync(), stack.getSync(), stack.getSync()], [5, 2, 1]);
  await stack.put(6);
  stack.close();
  const rest: number[] = [];
  for await (const n of stack) rest.push(n);
  assert.deepEqual(rest, [6]);
  await assert.rejects(stack.put(7), QueueClosedError);
});

Deno.test("PriorityQueue: lowest priority first, in put order among equals; a bad priority is refused", async () => {
  const queue = new PriorityQueue<string>();
  await queue.put("b0");
  await queue.put("x9", { priority: 9 });
  queue.putSync("a-1", { priority: -1 });
  assert.equal(queue.tryPut("b0 again", { priority: 0 }), true);
  await queue.put("neg-inf", { priority: -Infinity });
  for (const bad of [NaN, "high", null]) {
    await assert.rejects(queue.put("bad", { priority: bad as never }), {
      name: "TypeError",
      message: /PriorityQueue\.put\(\): 'priority' must be a number/,
    });
    assert.throws(() => queue.tryPut("bad", { priority: bad as never }), TypeError);
  }
  const order: string[] = [];
  while (queue.size > 0) order.push(await queue.get());
  assert.deepEqual(order, ["neg-inf", "a-1", "b0", "b0 again", "x9"]);
});

Deno.test("ordered queues go to threads: each item once, in the queue's order", async () => {
  const stack = new LifoQueue<number>();
  const queue = new PriorityQueue<number>();
  const producers = [0, 1].map((p) =>
    new Thread({
      target: (s: LifoQueue<number>, q: PriorityQueue<number>, p: number) => {
        for (let i = 0; i < 500; i++) {
          q.putSync(p * 1_000 + i, { priority: i % 5 });
          if (p === 0) s.putSync(i);
        }
      },
      args: [stack, queue, p],
    }).start()
  );
  await within(Promise.all(producers.map((t) => t.join())));
  const got: number[] = [];
  while (queue.size > 0) got.push(queue.getSync());
  assert.equal(got.length, 1_000);
  assert.deepEqual([...got].sort((a, b) => a - b), [
    ...Array.from({ length: 500 }, (_, i) => i),
    ...Array.from({ length: 500 }, (_, i) => 1_000 + i),
  ]);
  const priorities = got.map((n) => (n % 1_000) % 5);
  assert.deepEqual(priorities, [...priorities].sort((a, b) => a - b));
  for (const p of [0, 1]) {
    const mine = got.filter((n) => Math.floor(n / 1_000) === p && n % 5 === 2);
    assert.deepEqual(mine, [...mine].sort((a, b) => a - b), "equal priorities out of put order");
  }
  const popped: number[] = [];
  while (stack.size > 0) popped.push(stack.getSync());
  assert.deepEqual(popped, Array.from({ length: 500 }, (_, i) => 499 - i));
});

Deno.test("ordered queues go to processes, through the broker", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1 });
  const queue = new PriorityQueue<string>();
  const stack = new LifoQueue<string>();
  await stack.put("old");
  await stack.put("new");
  const newest = await within(
    pool.submit(
      async (q: PriorityQueue<string>, s: LifoQueue<string>) => {
        await q.put("low", { priority: 10 });
        await q.put("high", { priority: 1 });
        await q.put("default");
        return await s.get();
      },
      queue,
      stack,
    ),
  );
  assert.equal(newest, "new");
  assert.deepEqual([queue.getSync(), queue.getSync(), queue.getSync()], ["default", "high", "low"]);
});

Deno.test("ordered queues reuse their ring: a steady put/get cycle does not make it grow", async () => {
  const { queueRing } = await import("../queue/queue.ts");
  const item = (n: number) => `${n}:`.padEnd(1_000, "x");
  // LIFO: the usual get takes the newest frame, whose bytes are free again at once.
  const stack = new LifoQueue<string>();
  for (let n = 0; n < 10; n++) stack.putSync(item(n));
  for (let n = 0; n < 5_000; n++) {
    stack.putSync(item(n));
    assert.equal(stack.getSync({ timeout: 0 }), item(n));
  }
  assert.equal(queueRing(stack).capacity, 64 * 1024, "the LifoQueue's ring grew");
  // Priority: the oldest item stays (priority 100), so HEAD never passes the dead frames; they
  // are closed up before the ring would grow.
  const queue = new PriorityQueue<string>();
  queue.putSync(item(-1), { priority: 100 });
  const next = random(7);
  for (let n = 0; n < 20; n++) queue.putSync(item(n), { priority: Math.floor(next() * 10) });
  for (let n = 20; n < 5_000; n++) {
    queue.putSync(item(n), { priority: Math.floor(next() * 10) });
    queue.getSync({ timeout: 0 });
  }
  assert.equal(queueRing(queue).capacity, 64 * 1024, "the PriorityQueue's ring grew");
  // Emptied again and again after gets out of order: no dead frame outlives the queue's emptying.
  const emptied = new PriorityQueue<string>();
  for (let round = 0; round < 2_000; round++) {
    // Out of order: 1 and 2 die in place, 3 is the newest (its bytes free at once), 0 empties it.
    const priorities = [9, 1, 2, 8];
    for (let n = 0; n < 4; n++) emptied.putSync(item(n), { priority: priorities[n] });
    for (const n of [1, 2, 3, 0]) assert.equal(emptied.getSync({ timeout: 0 }), item(n));
  }
  assert.equal(
    queueRing(emptied).capacity,
    64 * 1024,
    "the emptied queue's ring grew",
  );
  // Filled past its first size, it finds room (a stale count of dead bytes would compact wrongly).
  for (let n = 0; n < 100; n++) emptied.putSync(item(n), { priority: n });
  for (let n = 0; n < 100; n++) assert.equal(emptied.getSync({ timeout: 0 }), item(n));
});
