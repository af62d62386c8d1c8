// Queue shared by the main thread and threads: exactly once, FIFO, blocking calls, values.
import assert from "node:assert/strict";
import { tasks, Thread } from "../mod.ts";
import { Queue } from "../queue/mod.ts";
import { flagSet, sharedFlags, within } from "./_helpers.ts";

const work = tasks<typeof import("./_queue_tasks.ts")>(
  new URL("./_queue_tasks.ts", import.meta.url),
);

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const PER_PRODUCER = 7_000;
/** Producer `p` puts p * 1,000,000 + 0 … PER_PRODUCER - 1. */
const itemsOf = (p: number) => Array.from({ length: PER_PRODUCER }, (_, i) => p * 1_000_000 + i);

async function mainProducer(queue: Queue<number>, p: number): Promise<void> {
  for (const item of itemsOf(p)) await queue.put(item, { timeout: 10_000 });
}

async function mainConsumer(queue: Queue<number>): Promise<number[]> {
  const items: number[] = [];
  for await (const item of queue) items.push(item);
  return items;
}

for (const maxSize of [undefined, 64]) {
  Deno.test(`Queue (maxSize ${maxSize}): 3 producers x 3 consumers (main, sync thread, async thread) get 21,000 items exactly once`, async () => {
    const queue = new Queue<number>({ maxSize });
    const consumers = [
      new Thread({ target: work.consumeSync, args: [queue] }).start(),
      new Thread({ target: work.consumeAsync, args: [queue] }).start(),
    ];
    const producers = [
      new Thread({ target: work.produceSync, args: [queue, 1_000_000, PER_PRODUCER] }).start(),
      new Thread({ target: work.produceAsync, args: [queue, 2_000_000, PER_PRODUCER] }).start(),
    ];
    const mainReceived = mainConsumer(queue);
    await within(mainProducer(queue, 0), 30_000);
    await within(Promise.all(producers.map((thread) => thread.join())), 30_000);
    queue.close();
    const received = [
      await within(mainReceived, 30_000),
      ...await within(Promise.all(consumers.map((thread) => thread.join())), 30_000),
    ];

    const all = received.flat().sort((a, b) => a - b);
    const sent = [0, 1, 2].flatMap(itemsOf);
    assert.equal(all.length, sent.length, "items lost or duplicated");
    assert.deepEqual(all, sent);
    // FIFO: each consumer sees each producer's items in the order they were put.
    for (const items of received) {
      const last = new Map<number, number>();
      for (const item of items) {
        const p = Math.floor(item / 1_000_000);
        assert.ok(item > (last.get(p) ?? -1), `producer ${p}'s items out of order`);
        last.set(p, item);
      }
    }
    assert.equal(queue.size, 0);
  });
}

Deno.test("Queue: one consumer gets a thread's 20,000 items in order", async () => {
  const queue = new Queue<number>({ maxSize: 100 });
  const producer = new Thread({ target: work.produceSync, args: [queue, 0, 20_000] }).start();
  for (let i = 0; i < 20_000; i++) assert.equal(await within(queue.get()), i);
  await within(producer.join());
  // And the other way round: the main thread produces, a thread consumes.
  const consumer = new Thread({ target: work.consumeSync, args: [queue] }).start();
  for (let i = 0; i < 20_000; i++) await queue.put(i, { timeout: 10_000 });
  queue.close();
  const items = await within(consumer.join());
  assert.deepEqual(items, Array.from({ length: 20_000 }, (_, i) => i));
});

Deno.test("Queue: putSync blocks a thread on a full queue until the main thread gets", async () => {
  const queue = new Queue<number>({ maxSize: 1 });
  const flags = sharedFlags(1);
  const producer = new Thread({ target: work.putEach, args: [queue, [1, 2, 3], flags] }).start();
  await flagSet(flags, 0);
  await delay(50);
  assert.equal(Atomics.load(flags, 0), 1, "putSync did not block on a full queue");
  assert.equal(await within(queue.get()), 1);
  assert.equal(await within(queue.get()), 2);
  assert.equal(await within(queue.get()), 3);
  await within(producer.join());
  assert.equal(Atomics.load(flags, 0), 3);
});

Deno.test("Queue: getSync in a thread waits for an item, or times out", async () => {
  const queue = new Queue<string>();
  const flags = sharedFlags(1);
  const getter = new Thread({ target: work.getOnce, args: [queue, flags, 10_000] }).start();
  await flagSet(flags, 0);
  await delay(30);
  await queue.put("hello");
  assert.equal(await within(getter.join()), "hello");

  const timedOut = new Thread({ target: work.getOnce, args: [queue, sharedFlags(1), 30] }).start();
  assert.equal(await within(timedOut.join()), "TimeoutError");
  const full = new Queue<string>({ maxSize: 1 });
  await full.put("x");
  const putter = new Thread({ target: work.putOnce, args: [full, "y", sharedFlags(1), 30] })
    .start();
  assert.equal(await within(putter.join()), "TimeoutError");
  assert.equal(full.size, 1);
});

Deno.test("Queue: close wakes a thread blocked in getSync or putSync", async () => {
  const empty = new Queue<string>();
  const full = new Queue<string>({ maxSize: 1 });
  await full.put("x");
  const getFlags = sharedFlags(1);
  const putFlags = sharedFlags(1);
  const getter = new Thread({ target: work.getOnce, args: [empty, getFlags, 10_000] }).start();
  const putter = new Thread({ target: work.putOnce, args: [full, "y", putFlags, 10_000] }).start();
  await flagSet(getFlags, 0);
  await flagSet(putFlags, 0);
  await delay(30);
  empty.close();
  full.close();
  assert.equal(await within(getter.join()), "QueueClosedError");
  assert.equal(await within(putter.join()), "QueueClosedError");
});

Deno.test("Queue: structured values and primitives cross to a thread and back intact", async () => {
  const values: unknown[] = [
    undefined,
    null,
    "",
    0,
    -0,
    NaN,
    -1.25,
    2 ** 53,
    true,
    "unicode: ✓ 日本語 😀",
    "long ".repeat(100_000),
    new Map<unknown, unknown>([["k", new Set([1, 2])], [3, new Date(86_400_000)]]),
    new Set(["a", 1n]),
    new Date(1_234_567_890_123),
    2n ** 100n,
    new Uint8Array([1, 2, 3]),
    new Float32Array([1.5, -2]),
    { deep: { array: [1, [2, { three: 3 }]], nothing: null } },
  ];
  for (const target of [work.echo, work.echoAsync]) {
    const input = new Queue<unknown>();
    const output = new Queue<unknown>({ maxSize: 4 });
    const thread = new Thread({ target, args: [input, output, values.length] }).start();
    for (const value of values) await input.put(value);
    for (const expected of values) {
      const got = await within(output.get());
      if (typeof expected === "number") assert.ok(Object.is(got, expected), String(expected));
      else assert.deepStrictEqual(got, expected);
    }
    assert.equal(await within(thread.join()), values.length);
  }
});

Deno.test("Queue: the ring grows while a thread fills it and the main thread drains it", async () => {
  const queue = new Queue<string>();
  // 4,000 strings of ~1 KB: ~4 MB through a ring that starts at 64 KiB.
  const producer = new Thread({
    target: (queue: Queue<string>, count: number) => {
      for (let i = 0; i < count; i++) queue.putSync(`${i}:`.padEnd(1024, "q"));
      queue.close();
    },
    args: [queue, 4_000],
  }).start();
  let i = 0;
  for await (const item of queue) {
    assert.equal(item, `${i}:`.padEnd(1024, "q"));
    i++;
  }
  assert.equal(i, 4_000);
  await within(producer.join());
});

Deno.test("Queue: queues nested in an object and an array arrive in a thread working", async () => {
  const input = new Queue<string>();
  const output = new Queue<string>();
  await input.put("nested");
  const thread = new Thread({ target: work.nestedQueues, args: [{ queues: [input, output] }] })
    .start();
  assert.equal(await within(thread.join()), "nested");
  assert.equal(await within(output.get()), "NESTED");
  assert.equal(input.size, 0);
});
