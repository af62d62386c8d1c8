/**
 * Guide chapter IV, "Queue in threading and multiprocessing". Mirrors Python's
 *
 *     q = Queue()
 *     for i in range(10): q.put(i)
 *     Process(target=_counter_queue, args=(q, "khanh process", 5)).start()
 *     Process(target=_counter_queue, args=(q, "ai process", 5)).start()
 *
 * The same `Queue` works across threads (shared memory) and processes (the
 * parent performs a child's `get`). Every item is taken exactly once, first
 * in, first out.
 *
 * @module
 */

import { JoinableQueue, Process, Queue, Thread } from "../mod.ts";
import { tasks } from "../mod.ts";

const work = tasks<typeof import("./_process_work.ts")>(
  new URL("./_process_work.ts", import.meta.url),
);

/** Runs the example. */
export async function main(): Promise<void> {
  const queue = new Queue<number>();
  for (let i = 0; i < 10; i++) await queue.put(i);
  const khanh = new Process({ target: work.counterQueue, args: [queue, 5], name: "khanh process" });
  const ai = new Process({ target: work.counterQueue, args: [queue, 5], name: "ai process" });
  khanh.start();
  await new Promise((resolve) => setTimeout(resolve, 5));
  ai.start();
  await Promise.all([khanh.join(), ai.join()]);

  // Threads take from the same kind of queue in shared memory; a JoinableQueue
  // lets the producer wait until every item has been handled.
  const jobs = new JoinableQueue<string>();
  const worker = new Thread({
    target: (queue: JoinableQueue<string>) => {
      let handled = 0;
      for (;;) {
        const job = queue.getSync();
        queue.taskDone();
        if (job === "stop") return handled;
        handled++;
      }
    },
    args: [jobs],
    name: "queue thread",
  }).start();
  for (const job of ["resize", "compress", "upload", "stop"]) await jobs.put(job);
  await jobs.join({ timeout: 5_000 });
  console.log(`\na thread handled ${await worker.join()} jobs; join() returned once all were done`);
}

if (import.meta.main) await main();
