// A Queue read by a child process, one `await queue.get()` at a time, while the parent fills it:
// directly on mapped memory (a child that may use FFI), against Python's multiprocessing.Queue
// between two processes (when `python3` is present) and against a thread reading the same way;
// and through the broker (a child without FFI) for the record.
//
//   deno bench -A bench/queue_process_bench.ts
//
// Each iteration is one submit (its round trip, about 0.15 ms, included) and the parent's puts;
// our parent's putSync loop runs before the task's message leaves, so the reader starts on a full
// queue, while Python's child reads as its parent puts. A child's start and first mapping are not
// part of the figures (a first submit does them before).
import { ProcessPool, Queue, tasks, ThreadPool } from "../mod.ts";
import { startPythonPeer } from "./_python_peer.ts";

const ITEMS = 200_000;
/** The broker path moves fewer: each get is a round trip to the parent. */
const BROKERED_ITEMS = 2_000;

const work = tasks<typeof import("./_queue_process_tasks.ts")>(
  new URL("./_queue_process_tasks.ts", import.meta.url),
);
const direct = new ProcessPool({ maxWorkers: 1, minWorkers: 1 });
const brokered = new ProcessPool({ maxWorkers: 1, minWorkers: 1, permissions: "none" });
const threads = new ThreadPool({ maxWorkers: 1, minWorkers: 1 });
const python = await startPythonPeer("_python_queue.py", "the queue group");

/** `count` ints put by this thread while `reader` gets them one at a time. */
async function transfer(reader: ProcessPool | ThreadPool, count: number): Promise<void> {
  const queue = new Queue<number>();
  const reading = reader.submit(work.sumOneByOne, queue, count);
  for (let i = 0; i < count; i++) queue.putSync(i);
  if (await reading !== (count * (count - 1)) / 2) throw new Error("items lost");
}
for (const reader of [direct, brokered, threads]) await transfer(reader, 10);

Deno.bench({
  name: `Python: ${ITEMS.toLocaleString("en")} ints, multiprocessing.Queue, parent → child`,
  group: "queue read by a child",
  baseline: true,
  ignore: !python,
  n: 10,
  fn: async () => {
    await python!.ask(`queue ${ITEMS}`);
  },
});
Deno.bench({
  name: `ours: ${ITEMS.toLocaleString("en")} ints, parent → child, mapped`,
  group: "queue read by a child",
  baseline: !python,
  n: 10,
  fn: async () => {
    await transfer(direct, ITEMS);
  },
});
Deno.bench({
  name: `ours: ${ITEMS.toLocaleString("en")} ints, main thread → thread`,
  group: "queue read by a child",
  n: 10,
  fn: async () => {
    await transfer(threads, ITEMS);
  },
});
Deno.bench({
  name: `ours: ${BROKERED_ITEMS.toLocaleString("en")} ints, parent → child without FFI (broker)`,
  group: "queue read by a child",
  n: 3,
  warmup: 1,
  fn: async () => {
    await transfer(brokered, BROKERED_ITEMS);
  },
});

globalThis.addEventListener("unload", () => {
  threads.shutdown();
  direct.shutdown();
  brokered.shutdown();
  python?.close();
});
