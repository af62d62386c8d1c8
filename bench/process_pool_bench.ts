// ProcessPool against ThreadPool, a bare `deno run` and (when `python3` is
// present) Python's multiprocessing.Pool, in the same run.
//   deno bench -A bench/process_pool_bench.ts
import { ProcessPool, tasks, ThreadPool, Value } from "../mod.ts";
import { startPythonPeer } from "./_python_peer.ts";
import { childFlags } from "../processes/_permissions.ts";
import { resolvePermissions } from "../processes/_permissions.ts";
import { fib } from "./_fib.ts";

const fibTasks = tasks<typeof import("./_fib.ts")>(new URL("./_fib.ts", import.meta.url));
const valueTasks = tasks<typeof import("./_value_tasks.ts")>(
  new URL("./_value_tasks.ts", import.meta.url),
);
const inc = (x: number) => x + 1;
const oneLine = new URL("./_one_line.ts", import.meta.url).pathname;

const processes = new ProcessPool({ maxWorkers: 2, minWorkers: 2 });
const threads = new ThreadPool({ maxWorkers: 2, minWorkers: 2 });
await processes.map(inc, Array.from({ length: 5_000 }, (_, i) => i), { chunkSize: 1 });
await threads.map(inc, Array.from({ length: 5_000 }, (_, i) => i), { chunkSize: 1 });
await processes.map(fibTasks.fib, [20, 20]);

async function submitMany(pool: ThreadPool | ProcessPool, count: number): Promise<void> {
  const submitted = new Array(count);
  for (let i = 0; i < count; i++) submitted[i] = pool.submit(inc, i);
  await Promise.all(submitted);
}

const TINY = 20_000;
Deno.bench({
  name: "ThreadPool.submit, 2 workers, 20,000 tasks (x + 1)",
  group: "tiny tasks",
  baseline: true,
  fn: async () => await submitMany(threads, TINY),
});
Deno.bench({
  name: "ProcessPool.submit, 2 processes, 20,000 tasks (x + 1)",
  group: "tiny tasks",
  fn: async () => await submitMany(processes, TINY),
});

const MAP_ITEMS = 1_000_000;
const items = Array.from({ length: MAP_ITEMS }, (_, i) => i);
const python = await startPythonPeer("_python_map.py", "the map group");
if (python) {
  Deno.bench({
    name: "Python multiprocessing.Pool(2).map, 1,000,000 items, default chunks",
    group: "map",
    baseline: true,
    n: 10,
    // An async function: deno bench awaits only those.
    async fn() {
      await python.ask(`map ${MAP_ITEMS}`);
    },
  });
}
Deno.bench({
  name: "ProcessPool.map, 2 processes, 1,000,000 items, automatic chunks",
  group: "map",
  baseline: !python,
  n: 10,
  fn: async () => {
    await processes.map(inc, items);
  },
});
Deno.bench({
  name: "ThreadPool.map, 2 threads, 1,000,000 items, automatic chunks",
  group: "map",
  n: 10,
  fn: async () => {
    await threads.map(inc, items);
  },
});

// A child gets these flags under -A: the bare child is started with the same ones.
const flags = childFlags(resolvePermissions(undefined, "bench"), {
  moduleUrl: new URL("../processes/_child.ts", import.meta.url),
});
Deno.bench({
  name: "bare `deno run` of a one-line script, to its first output",
  group: "start-up",
  baseline: true,
  n: 20,
  fn: async (b) => {
    b.start();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, oneLine],
      stdout: "piped",
    }).spawn();
    const output = child.stdout.getReader();
    await output.read();
    b.end();
    await output.cancel();
    await child.status;
  },
});
Deno.bench({
  name: "first result from a new ProcessPool",
  group: "start-up",
  n: 20,
  fn: async (b) => {
    b.start();
    const pool = new ProcessPool({ maxWorkers: 1 });
    await pool.submit(inc, 1);
    b.end();
    await pool.shutdown();
  },
});

Deno.bench({
  name: "fib(32) x 8 serially on the main thread",
  group: "CPU-bound",
  baseline: true,
  n: 3,
  warmup: 1,
  fn: () => {
    for (let i = 0; i < 8; i++) fib(32);
  },
});
Deno.bench({
  name: "fib(32) x 8 on a ProcessPool of 2",
  group: "CPU-bound",
  n: 3,
  warmup: 1,
  fn: async () => {
    await processes.map(fibTasks.fib, [32, 32, 32, 32, 32, 32, 32, 32], { chunkSize: 1 });
  },
});

const counter = new Value("int32", 0);
Deno.bench({
  name: "ProcessPool.submit round trips, 1,000 one after another",
  group: "Value.add from a process",
  baseline: true,
  n: 10,
  fn: async () => {
    for (let i = 0; i < 1_000; i++) await processes.submit(inc, i);
  },
});
Deno.bench({
  name: "Value.add from a process, 1,000 one after another",
  group: "Value.add from a process",
  n: 10,
  fn: async () => {
    await processes.submit(valueTasks.addMany, counter, 1_000);
  },
});

globalThis.addEventListener("unload", () => {
  processes.shutdown();
  threads.shutdown();
  python?.close();
});
