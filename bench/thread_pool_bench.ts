// ThreadPool against bare Web Workers, in the same run.
//   deno bench -A --v8-flags=--expose-gc bench/thread_pool_bench.ts
// Each iteration starts from a collected heap (when gc is exposed), so the
// garbage of one bench is not collected on the time of the next.
import { tasks, ThreadPool } from "../mod.ts";
import { fib } from "./_fib.ts";

const echoUrl = new URL("./_echo_worker.ts", import.meta.url);
const work = tasks<typeof import("./_fib.ts")>(new URL("./_fib.ts", import.meta.url));
const inc = (x: number) => x + 1;
const collect = (globalThis as { gc?: () => void }).gc ?? (() => {});

/** Sends `count` numbers round-robin to `workers` bare workers and waits for every reply. */
function flood(workers: Worker[], count: number): Promise<void> {
  return new Promise((resolve) => {
    let replies = 0;
    for (const worker of workers) {
      worker.onmessage = () => {
        if (++replies === count) resolve();
      };
    }
    for (let i = 0; i < count; i++) workers[i % workers.length].postMessage(i);
  });
}

async function bareWorkers(n: number): Promise<Worker[]> {
  const workers = Array.from({ length: n }, () => new Worker(echoUrl, { type: "module" }));
  await flood(workers, n * 10);
  return workers;
}

// Long-lived pools and workers, warmed up once; the process ends with the bench.
const rawPair = await bareWorkers(2);
const pool = new ThreadPool({ maxWorkers: 2, minWorkers: 2 });
await pool.map(inc, Array.from({ length: 10_000 }, (_, i) => i), { chunkSize: 1 });
const fibPool = new ThreadPool({ maxWorkers: 2, minWorkers: 2 });
await fibPool.map(work.fib, [20, 20]);

const TINY = 20_000;
Deno.bench({
  name: "bare postMessage flood, 2 workers, 20,000 messages",
  group: "tiny tasks",
  baseline: true,
  fn: async (b) => {
    collect();
    b.start();
    await flood(rawPair, TINY);
    b.end();
  },
});
Deno.bench({
  name: "ThreadPool.submit, 2 workers, 20,000 tasks (x + 1)",
  group: "tiny tasks",
  fn: async (b) => {
    collect();
    b.start();
    const submitted = new Array(TINY);
    for (let i = 0; i < TINY; i++) submitted[i] = pool.submit(inc, i);
    await Promise.all(submitted);
    b.end();
  },
});

const ITEMS = 100_000;
const items = Array.from({ length: ITEMS }, (_, i) => i);
Deno.bench({
  name: "bare postMessage flood, 2 workers, 100,000 messages",
  group: "map 100,000 items",
  baseline: true,
  n: 20,
  fn: async (b) => {
    collect();
    b.start();
    await flood(rawPair, ITEMS);
    b.end();
  },
});
Deno.bench({
  name: "ThreadPool.map, 2 workers, 100,000 items, automatic chunks",
  group: "map 100,000 items",
  n: 20,
  fn: async (b) => {
    collect();
    b.start();
    await pool.map(inc, items);
    b.end();
  },
});

Deno.bench({
  name: "fib(32) x 8 serially on the main thread",
  group: "CPU-bound",
  baseline: true,
  n: 3,
  warmup: 1,
  fn: (b) => {
    collect();
    b.start();
    for (let i = 0; i < 8; i++) fib(32);
    b.end();
  },
});
Deno.bench({
  name: "fib(32) x 8 on a ThreadPool of 2",
  group: "CPU-bound",
  n: 3,
  warmup: 1,
  fn: async (b) => {
    collect();
    b.start();
    await fibPool.map(work.fib, [32, 32, 32, 32, 32, 32, 32, 32], { chunkSize: 1 });
    b.end();
  },
});

Deno.bench({
  name: "first reply from a new bare Worker",
  group: "start-up",
  baseline: true,
  n: 30,
  fn: async () => {
    const worker = new Worker(echoUrl, { type: "module" });
    await new Promise((resolve) => {
      worker.onmessage = resolve;
      worker.postMessage(1);
    });
    worker.terminate();
  },
});
Deno.bench({
  name: "first result from a new ThreadPool",
  group: "start-up",
  n: 30,
  fn: async () => {
    const fresh = new ThreadPool({ maxWorkers: 1 });
    await fresh.submit(inc, 1);
    await fresh.shutdown();
  },
});

// I/O-bound tasks (a 100 ms wait each): one at a time per worker, or five.
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ioOne = new ThreadPool({ maxWorkers: 2, minWorkers: 2 });
const ioFive = new ThreadPool({ maxWorkers: 2, minWorkers: 2, concurrentTasksPerWorker: 5 });
await Promise.all([ioOne.submit(inc, 1), ioFive.submit(inc, 1)]);
for (
  const [name, ioPool, baseline] of [["1 (the default)", ioOne, true], [
    "5",
    ioFive,
    false,
  ]] as const
) {
  Deno.bench({
    name: `10 tasks awaiting 100 ms, 2 threads, concurrentTasksPerWorker ${name}`,
    group: "I/O-bound",
    baseline,
    n: 5,
    warmup: 1,
    fn: async () => {
      await Promise.all(Array.from({ length: 10 }, () => ioPool.submit(sleep, 100)));
    },
  });
}

globalThis.addEventListener("unload", () => {
  for (const worker of rawPair) worker.terminate();
  pool.shutdown();
  fibPool.shutdown();
  ioOne.shutdown();
  ioFive.shutdown();
});
