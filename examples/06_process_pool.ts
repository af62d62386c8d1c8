/**
 * Guide chapter III.2, "The process pool". Mirrors Python's
 *
 *     with Pool(2) as pool:
 *         print(pool.map(fib, [20, 21, 22]))
 *
 * A `ProcessPool` has the whole `ThreadPool` API; the tasks run in child
 * processes. CPU-bound work runs in parallel, timed against the main thread.
 *
 * @module
 */

import { ProcessPool, tasks } from "../mod.ts";
import { fib } from "./_process_work.ts";

const work = tasks<typeof import("./_process_work.ts")>(
  new URL("./_process_work.ts", import.meta.url),
);

/** Runs the example. */
export async function main(): Promise<void> {
  await using pool = new ProcessPool({ maxWorkers: 2, minWorkers: 2 });
  console.log("map(fib, [20, 21, 22])  =", await pool.map(work.fib, [20, 21, 22]));
  console.log("submit(fib, 25)         =", await pool.submit(work.fib, 25));
  const pids = await pool.map(() => Deno.pid, [1, 2, 3, 4], { chunkSize: 1 });
  console.log(`the tasks ran in processes ${[...new Set(pids)].join(", ")} (parent ${Deno.pid})`);

  const inputs = [32, 32, 32, 32];
  let start = performance.now();
  for (const n of inputs) fib(n);
  const serial = performance.now() - start;
  start = performance.now();
  await pool.map(work.fib, inputs, { chunkSize: 1 });
  const parallel = performance.now() - start;
  console.log(
    `\nfib(32) x 4: serially ${serial.toFixed(0)} ms, on 2 processes ${parallel.toFixed(0)} ms`,
  );
}

if (import.meta.main) await main();
