// A child process's operations on a parent's Value and Mutex: directly on mapped memory (a child
// that may use FFI), against Python's multiprocessing.Value from a child (when `python3` is
// present) and against the same in a thread, and through the broker (a child without FFI) for the
// record.
//
//   deno bench -A bench/shared_memory_bench.ts
//
// Each iteration is one submit that does the operations in the child, so its round trip (about
// 0.15 ms) is included; Python's is one line over a pipe to its child and back.
import { Mutex, ProcessPool, tasks, ThreadPool, Value } from "../mod.ts";
import { startPythonPeer } from "./_python_peer.ts";

const OPS = 200_000;
/** The broker path does fewer: each operation is a round trip to the parent. */
const BROKERED_OPS = 2_000;

const valueTasks = tasks<typeof import("./_value_tasks.ts")>(
  new URL("./_value_tasks.ts", import.meta.url),
);
const direct = new ProcessPool({ maxWorkers: 1, minWorkers: 1 });
const brokered = new ProcessPool({ maxWorkers: 1, minWorkers: 1, permissions: "none" });
const value = new Value("int32", 0);
// First use (the child starting, mapping the memory) is not part of the figures below.
await direct.submit(valueTasks.addSyncMany, value, 1);
await brokered.submit(valueTasks.addMany, value, 1);

const python = await startPythonPeer("_python_value.py", "the Value group");

Deno.bench({
  name: `Python: ${
    OPS.toLocaleString("en")
  } locked increments of a multiprocessing.Value in a child`,
  group: "Value from a child",
  baseline: true,
  ignore: !python,
  n: 10,
  fn: async () => {
    await python!.ask(`value ${OPS}`);
  },
});
Deno.bench({
  name: `ours: ${OPS.toLocaleString("en")} await value.add(1) in a child, mapped`,
  group: "Value from a child",
  baseline: !python,
  n: 10,
  fn: async () => {
    await direct.submit(valueTasks.addMany, value, OPS);
  },
});
Deno.bench({
  name: `ours: ${OPS.toLocaleString("en")} value.addSync(1) in a child, mapped`,
  group: "Value from a child",
  n: 10,
  fn: async () => {
    await direct.submit(valueTasks.addSyncMany, value, OPS);
  },
});
Deno.bench({
  name: `ours: ${OPS.toLocaleString("en")} locked increments in a child, mapped (await acquire)`,
  group: "Value from a child",
  n: 10,
  fn: async () => {
    await direct.submit(valueTasks.lockedIncrements, value, OPS);
  },
});
Deno.bench({
  name: `ours: ${OPS.toLocaleString("en")} locked increments in a child, mapped (acquireSync)`,
  group: "Value from a child",
  n: 10,
  fn: async () => {
    await direct.submit(valueTasks.lockedIncrementsSync, value, OPS);
  },
});
Deno.bench({
  name: `ours: ${
    BROKERED_OPS.toLocaleString("en")
  } locked increments in a child without FFI (broker)`,
  group: "Value from a child",
  n: 3,
  warmup: 1,
  fn: async () => {
    await brokered.submit(valueTasks.lockedIncrements, value, BROKERED_OPS);
  },
});
Deno.bench({
  name: `ours: ${
    BROKERED_OPS.toLocaleString("en")
  } await value.add(1) in a child without FFI (broker)`,
  group: "Value from a child",
  n: 3,
  warmup: 1,
  fn: async () => {
    await brokered.submit(valueTasks.addMany, value, BROKERED_OPS);
  },
});

const mutex = new Mutex();
const threads = new ThreadPool({ maxWorkers: 1, minWorkers: 1 });
await threads.submit(valueTasks.mutexRounds, mutex, 1);
await direct.submit(valueTasks.mutexRounds, mutex, 1);
Deno.bench({
  name: `${OPS.toLocaleString("en")} uncontended Mutex acquireSync + release in a thread`,
  group: "Mutex in a child",
  baseline: true,
  n: 10,
  fn: async () => {
    await threads.submit(valueTasks.mutexRounds, mutex, OPS);
  },
});
Deno.bench({
  name: `the same in a child, mapped`,
  group: "Mutex in a child",
  n: 10,
  fn: async () => {
    await direct.submit(valueTasks.mutexRounds, mutex, OPS);
  },
});

globalThis.addEventListener("unload", () => {
  threads.shutdown();
  direct.shutdown();
  brokered.shutdown();
  python?.close();
});
