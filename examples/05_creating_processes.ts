/**
 * Guide chapter III.1, "Creating a process". Mirrors Python's
 *
 *     p1 = Process(target=_counter, args=(5,), name="khanh process")
 *     p1.start(); p1.join(); print(p1.pid, p1.exitcode)
 *
 * Each `Process` is a `deno run` child with its own memory, its own heap and
 * its own permissions (here `"none"` beyond what the library needs).
 *
 * @module
 */

import { Process, tasks } from "../mod.ts";

const work = tasks<typeof import("./_process_work.ts")>(
  new URL("./_process_work.ts", import.meta.url),
);

/** Runs the example. */
export async function main(): Promise<void> {
  const khanh = new Process({
    target: work.counter,
    args: [3, 60],
    name: "khanh process",
    permissions: "none",
  });
  const ai = new Process({ target: work.counter, args: [3, 60], name: "ai process" });
  console.log(`parent pid ${Deno.pid}; before start: pid = ${khanh.pid}, alive = ${khanh.isAlive}`);
  khanh.start();
  await new Promise((resolve) => setTimeout(resolve, 30));
  ai.start();
  console.log(`started ${khanh.name} (pid ${khanh.pid}) and ${ai.name} (pid ${ai.pid})`);
  const results = await Promise.all([khanh.join(), ai.join()]);
  console.log("join() returned:", results);
  console.log(`exit codes: ${khanh.name} ${khanh.exitCode}, ${ai.name} ${ai.exitCode}`);

  const dying = new Process({ target: (code: number) => Deno.exit(code), args: [3] }).start();
  await dying.join().catch((error) => {
    console.log(`a child that exits early: ${error.name}: ${error.message}`);
  });
}

if (import.meta.main) await main();
