// A Queue read by a child process through the parent's broker.
//   deno bench -A bench/queue_process_bench.ts
// For scale: Python's multiprocessing.Queue moves about 296,000 items/s here.
import { ProcessPool, Queue, tasks } from "../mod.ts";

const work = tasks<typeof import("./_queue_process_tasks.ts")>(
  new URL("./_queue_process_tasks.ts", import.meta.url),
);
const ITEMS = 10_000;

const pool = new ProcessPool({ maxWorkers: 1, minWorkers: 1 });
await pool.submit(work.drainPipelined, filled(10), 10, 10);

function filled(count: number, close = false): Queue<number> {
  const queue = new Queue<number>();
  for (let i = 0; i < count; i++) queue.putSync(i);
  if (close) queue.close();
  return queue;
}

Deno.bench({
  name: "10,000 gets in a child, one at a time (for await)",
  group: "queue through a process",
  baseline: true,
  n: 5,
  fn: async (b) => {
    const queue = filled(ITEMS, true);
    b.start();
    await pool.submit(work.drainOneByOne, queue);
    b.end();
  },
});
Deno.bench({
  name: "10,000 gets in a child, 200 in flight",
  group: "queue through a process",
  n: 10,
  fn: async (b) => {
    const queue = filled(ITEMS);
    b.start();
    await pool.submit(work.drainPipelined, queue, ITEMS, 200);
    b.end();
  },
});

globalThis.addEventListener("unload", () => pool.shutdown());
