/**
 * Guide chapter III.3, "Sharing data between processes". Mirrors Python's
 *
 *     counter = Value("i", 0); squares = Array("d", 8)
 *     Process(target=work, args=(counter, squares)).start()
 *
 * A `Value` or `SharedArray` is shared memory. Run with `-A` (as `deno task
 * example` does), a child may use FFI and maps the same pages, so its updates
 * are atomic `Atomics` operations, as in a thread; a child without FFI gets a
 * handle whose operations the parent performs. Either way none is lost.
 *
 * @module
 */

import { ProcessPool, SharedArray, tasks, ThreadPool, Value } from "../mod.ts";

const work = tasks<typeof import("./_process_work.ts")>(
  new URL("./_process_work.ts", import.meta.url),
);

/** Runs the example. */
export async function main(): Promise<void> {
  const counter = new Value("int32", 0);
  const squares = new SharedArray("float64", 8);
  {
    await using pool = new ProcessPool({ maxWorkers: 2 });
    await Promise.all([
      pool.submit(work.addMany, counter, 250),
      pool.submit(work.addMany, counter, 250),
      pool.submit(work.fillSquares, squares, 0, 4),
      pool.submit(work.fillSquares, squares, 4, 8),
    ]);
  }
  console.log(`2 processes x 250 atomic adds -> counter = ${await counter.load()}`);
  console.log("squares filled by 2 processes:", await squares.toArray());

  await using threads = new ThreadPool({ maxWorkers: 2 });
  const addSync = (value: Value<"int32">, times: number) => {
    for (let i = 0; i < times; i++) value.addSync(1);
  };
  await Promise.all([
    threads.submit(addSync, counter, 100_000),
    threads.submit(addSync, counter, 100_000),
  ]);
  console.log(`then 2 threads x 100,000 adds in shared memory -> counter = ${counter.loadSync()}`);
}

if (import.meta.main) await main();
