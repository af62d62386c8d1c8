/**
 * Guide chapter III.4, "The synchronous mechanism for processes". Mirrors
 * Python's
 *
 *     lock = Lock()
 *     Process(target=append_lines, args=(path, 20, lock)).start()
 *
 * Two processes append lines to one file by reading it, pausing, and writing
 * it back. Without a lock they overwrite each other's lines; with a `Mutex`
 * (the same class the threads use) every line survives.
 *
 * @module
 */

import { Mutex, ProcessPool, tasks } from "../mod.ts";

const work = tasks<typeof import("./_process_work.ts")>(
  new URL("./_process_work.ts", import.meta.url),
);

async function run(pool: ProcessPool, mutex?: Mutex): Promise<number> {
  const path = await Deno.makeTempFile({ prefix: "parallel-example-" });
  try {
    await Promise.all([
      pool.submit(work.appendLines, path, 20, mutex),
      pool.submit(work.appendLines, path, 20, mutex),
    ]);
    return (await Deno.readTextFile(path)).split("\n").filter(Boolean).length;
  } finally {
    await Deno.remove(path);
  }
}

/** Runs the example. */
export async function main(): Promise<void> {
  await using pool = new ProcessPool({ maxWorkers: 2, minWorkers: 2 });
  console.log(`without a lock: 2 processes x 20 lines -> ${await run(pool)} lines in the file`);
  console.log(
    `with a Mutex  : 2 processes x 20 lines -> ${await run(pool, new Mutex())} lines in the file`,
  );
}

if (import.meta.main) await main();
