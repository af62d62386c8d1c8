/**
 * Guide chapter V, "Process pool vs thread pool". In Python the advice is:
 * threads for I/O-bound work, processes for CPU-bound work, because the
 * interpreter lock keeps threads from running Python code in parallel.
 *
 * Deno has no interpreter lock: both pools run CPU-bound work in parallel,
 * and both overlap I/O. Threads start faster and share memory; processes buy
 * isolation (their own heap, permissions, and crashes that cannot take the
 * parent down).
 *
 * @module
 */

import { ProcessPool, tasks, ThreadPool } from "../mod.ts";
import { fib } from "./_process_work.ts";

const work = tasks<typeof import("./_process_work.ts")>(
  new URL("./_process_work.ts", import.meta.url),
);

async function time(label: string, run: () => unknown): Promise<void> {
  const start = performance.now();
  await run();
  console.log(`  ${label.padEnd(22)} ${(performance.now() - start).toFixed(0).padStart(5)} ms`);
}

/** Runs the example. */
export async function main(): Promise<void> {
  // trace: true records a timeline of every task (written to pools.trace.json below).
  await using threads = new ThreadPool({ maxWorkers: 2, minWorkers: 2, trace: true });
  await using overlapping = new ThreadPool({ maxWorkers: 2, concurrentTasksPerWorker: 2 });
  await using processes = new ProcessPool({ maxWorkers: 2, minWorkers: 2 });
  await threads.map(work.fib, [1, 1]);
  await processes.map(work.fib, [1, 1]);
  await overlapping.map(work.fib, [1, 1, 1, 1], { chunkSize: 1 });

  const waits = [100, 100, 100, 100];
  console.log("I/O-bound: 4 waits of 100 ms, 2 workers (each worker runs one task at a time)");
  await time("one after another", async () => {
    for (const ms of waits) await new Promise((resolve) => setTimeout(resolve, ms));
  });
  await time("ThreadPool", () => threads.map(work.fetchLike, waits, { chunkSize: 1 }));
  await time("ProcessPool", () => processes.map(work.fetchLike, waits, { chunkSize: 1 }));
  await time(
    "2 at once per thread",
    () => overlapping.map(work.fetchLike, waits, { chunkSize: 1 }),
  );

  const inputs = [33, 33, 33, 33];
  console.log("CPU-bound: fib(33) x 4, 2 workers");
  await time("main thread", () => inputs.forEach((n) => fib(n)));
  await time("ThreadPool", () => threads.map(work.fib, inputs, { chunkSize: 1 }));
  await time("ProcessPool", () => processes.map(work.fib, inputs, { chunkSize: 1 }));
  console.log(
    "The lesson for Deno: both pools are parallel. Choose threads for speed and shared memory,\n" +
      "processes for isolation. For I/O-bound async tasks, concurrentTasksPerWorker overlaps them.",
  );
  const file = "pools.trace.json";
  await Deno.writeTextFile(file, JSON.stringify(threads.trace()));
  console.log(
    `The ThreadPool's timeline is in ${file}: open it at https://ui.perfetto.dev (Open trace file)\n` +
      "or in chrome://tracing, one lane per worker and one for the queue.",
  );
}

if (import.meta.main) await main();
