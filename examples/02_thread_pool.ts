/**
 * Guide chapter II.2, "ThreadPoolExecutor". Mirrors Python's
 *
 *     with ThreadPoolExecutor(max_workers=2) as executor:
 *         print(list(executor.map(fib, [20, 21, 22, 23, 24])))
 *         print(executor.submit(fib, 30).result())
 *
 * `await using` shuts the pool down at the end of the block, like `with`.
 * Unlike CPython's threads, Deno's have no interpreter lock: CPU-bound work
 * on a ThreadPool runs in parallel, as the timing below shows.
 *
 * @module
 */

import { tasks, ThreadPool } from "../mod.ts";
import { fib } from "./_work.ts";

const work = tasks<typeof import("./_work.ts")>(new URL("./_work.ts", import.meta.url));

/** Runs the example. */
export async function main(): Promise<void> {
  {
    await using pool = new ThreadPool({ maxWorkers: 2 });
    // map: one call per item, spread over the workers; results in input order.
    console.log("map(fib, [20..24])    =", await pool.map(work.fib, [20, 21, 22, 23, 24]));
    // submit: one call; the Task it returns is awaitable, like a Future.
    const task = pool.submit(work.fib, 30);
    console.log("await submit(fib, 30) =", await task);
  }

  // CPU-bound work: fib(34) four times, first one after another on the main
  // thread, then on a pool of 2 threads.
  const n = 34;
  const inputs = [n, n, n, n];
  console.log(`\nfib(${n}) x ${inputs.length}, CPU-bound (this machine has ${cpus()} CPUs):`);

  let start = performance.now();
  for (const x of inputs) fib(x);
  const serialMs = performance.now() - start;
  console.log(`  serially on the main thread: ${serialMs.toFixed(0).padStart(4)} ms`);

  await using pool = new ThreadPool({ maxWorkers: 2 });
  await pool.map(work.fib, [1, 1]); // start both workers before timing
  start = performance.now();
  await Promise.all(inputs.map((x) => pool.submit(work.fib, x)));
  const poolMs = performance.now() - start;
  console.log(`  on a ThreadPool of 2:        ${poolMs.toFixed(0).padStart(4)} ms`);
  console.log(`  speed-up: ${(serialMs / poolMs).toFixed(1)}x (no interpreter lock in Deno)`);
}

function cpus(): number {
  return navigator.hardwareConcurrency ?? 1;
}

if (import.meta.main) await main();
