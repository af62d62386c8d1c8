// One queue used at once by the main thread, threads and child processes.
import assert from "node:assert/strict";
import { ProcessPool, Queue, tasks, ThreadPool } from "../mod.ts";
import { within } from "./_helpers.ts";

const work = tasks<typeof import("./_queue_tasks.ts")>(
  new URL("./_queue_tasks.ts", import.meta.url),
);

Deno.test("main, threads and processes produce and consume 24,000 items exactly once", async () => {
  await using threads = new ThreadPool({ maxWorkers: 2 });
  await using processes = new ProcessPool({ maxWorkers: 2 });
  const queue = new Queue<number>();
  const PER = 6_000;
  const consumers = [
    threads.submit(work.consumeSync, queue),
    processes.submit(work.consumeAsync, queue),
    (async () => {
      const items: number[] = [];
      for await (const item of queue) items.push(item);
      return items;
    })(),
  ];
  const producers = [
    threads.submit(work.produceSync, queue, 0, PER),
    processes.submit(work.produceBatched, queue, PER, PER),
    processes.submit(work.produceBatched, queue, 2 * PER, PER),
    (async () => {
      for (let i = 3 * PER; i < 4 * PER; i++) await queue.put(i);
      return PER;
    })(),
  ];
  await within(Promise.all(producers), 60_000);
  queue.close();
  const received = (await within(Promise.all(consumers), 60_000)).flat();
  assert.equal(received.length, 4 * PER);
  assert.deepEqual(
    received.toSorted((a, b) => a - b),
    Array.from({ length: 4 * PER }, (_, i) => i),
  );
});

Deno.test("structured values cross a queue through a process intact, in order", async () => {
  await using processes = new ProcessPool({ maxWorkers: 1 });
  const input = new Queue<unknown>();
  const output = new Queue<unknown>();
  const values = [
    new Map([["a", 1n]]),
    new Set([1, "two"]),
    new Date(86_400_000),
    123n,
    new Uint8Array([1, 2, 3]),
    { nested: [null, undefined, "ü"] },
    undefined,
    -0,
  ];
  const relayed = processes.submit(work.relay, input, output);
  for (const value of values) await input.put(value);
  input.close();
  assert.equal(await within(relayed), values.length);
  const back: unknown[] = [];
  for (let i = 0; i < values.length; i++) back.push(await output.get({ timeout: 5_000 }));
  assert.deepEqual(back, values);
  assert.ok(Object.is(back[7], -0));
});

Deno.test("in a child, the queue's immediate methods name the async form", async () => {
  // A child without FFI uses the queue through the broker (one with FFI uses it directly).
  await using processes = new ProcessPool({ maxWorkers: 1, permissions: "none" });
  const queue = new Queue<number>();
  const message = await within(processes.submit((q: Queue<number>) => {
    try {
      q.tryGet();
      return "no error";
    } catch (error) {
      return (error as Error).message;
    }
  }, queue));
  assert.match(message, /Queue.tryGet cannot answer at once in a child process/);
});
