/**
 * Benchmarks of `queue/`, run with `deno bench -A bench/queue_bench.ts`.
 *
 * Every iteration moves {@linkcode ITEMS} numbers one way between two
 * threads, so items per second is `ITEMS / (time per iteration)`:
 *
 * - baseline: bare `postMessage`, one worker posting each number on a
 *   `MessagePort` to another worker, which counts them and answers when it
 *   has all of them (the cheapest way for two workers to pass items);
 * - `Queue`: one thread `putSync`s the numbers into an unbounded queue while
 *   another `getSync`s them; and the same with `maxSize: 1000`, where the
 *   producer waits for room.
 *
 * For scale: Python's `queue.Queue` moves about 560,000 items/s between two
 * threads on this kind of machine.
 *
 * @module
 */

import { ThreadPool } from "../mod.ts";
import { Queue } from "../queue/mod.ts";

const ITEMS = 200_000;

// ---- the baseline: two bare workers joined by a MessageChannel -------------

function workerFrom(source: string): Worker {
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module" });
  URL.revokeObjectURL(url);
  return worker;
}

const sender = workerFrom(`
  let port;
  self.onmessage = (event) => {
    if (event.data.port) { port = event.data.port; return; }
    const n = event.data.send;
    for (let i = 0; i < n; i++) port.postMessage(i);
  };
`);
const receiver = workerFrom(`
  let expected = 0, received = 0, sum = 0;
  self.onmessage = (event) => {
    if (event.data.port) {
      event.data.port.onmessage = (message) => {
        sum += message.data;
        if (++received === expected) self.postMessage(sum);
      };
      return;
    }
    expected = event.data.expect;
    received = 0;
    sum = 0;
  };
`);
const channel = new MessageChannel();
sender.postMessage({ port: channel.port1 }, [channel.port1]);
receiver.postMessage({ port: channel.port2 }, [channel.port2]);

function postMessageRun(n: number): Promise<number> {
  return new Promise((resolve) => {
    receiver.onmessage = (event) => resolve(event.data);
    receiver.postMessage({ expect: n });
    sender.postMessage({ send: n });
  });
}

// ---- the queue: a producer thread and a consumer thread ---------------------

const pool = new ThreadPool({ maxWorkers: 2, minWorkers: 2 });
const unbounded = new Queue<number>();
const bounded = new Queue<number>({ maxSize: 1000 });

const produce = (queue: Queue<number>, n: number): void => {
  for (let i = 0; i < n; i++) queue.putSync(i);
};
const consume = (queue: Queue<number>, n: number): number => {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += queue.getSync();
  return sum;
};

async function queueRun(queue: Queue<number>, n: number): Promise<number> {
  const [, sum] = await Promise.all([
    pool.submit(produce, queue, n),
    pool.submit(consume, queue, n),
  ]);
  return sum;
}

const expectedSum = (ITEMS * (ITEMS - 1)) / 2;
function check(sum: number): void {
  if (sum !== expectedSum) throw new Error(`received a sum of ${sum}, expected ${expectedSum}`);
}

Deno.bench({
  name: `postMessage, worker → worker (${ITEMS} numbers/iter)`,
  group: "thread to thread",
  baseline: true,
  n: 20,
  warmup: 3,
  async fn() {
    check(await postMessageRun(ITEMS));
  },
});

Deno.bench({
  name: `Queue putSync → getSync, unbounded (${ITEMS} numbers/iter)`,
  group: "thread to thread",
  n: 20,
  warmup: 3,
  async fn() {
    check(await queueRun(unbounded, ITEMS));
  },
});

Deno.bench({
  name: `Queue putSync → getSync, maxSize 1000 (${ITEMS} numbers/iter)`,
  group: "thread to thread",
  n: 20,
  warmup: 3,
  async fn() {
    check(await queueRun(bounded, ITEMS));
  },
});

globalThis.addEventListener("unload", () => {
  sender.terminate();
  receiver.terminate();
  pool.shutdown();
});
