// Figures as a user meets them: each measurement runs in a fresh `deno run`
// process, first use included (loading the library and starting workers).
// Each is the median of 15 rounds, against a raw baseline measured the same
// way, rounds of the two interleaved.
//
//   deno task bench:fresh
//
// A round prints one number: milliseconds since the process started
// (`performance.now()`), or the milliseconds a measured loop took.
const ROUNDS = 15;
const here = new URL(".", import.meta.url);
const lib = new URL("../mod.ts", import.meta.url).href;
const threadsLib = new URL("../threads/mod.ts", import.meta.url).href;
const echo = new URL("./_echo_worker.ts", import.meta.url).href;
const dir = await Deno.makeTempDir({ prefix: "parallel-core-fresh-" });

const programs: Record<string, string> = {
  // The first answer from a new ThreadPool, counted from the process's start.
  poolFirst: `
    import { ThreadPool } from "${lib}";
    const pool = new ThreadPool({ maxWorkers: 1 });
    await pool.submit((x: number) => x + 1, 1);
    console.log(performance.now());
    await pool.shutdown();`,
  // The same, importing only the threads entry point (no node:v8, no processes or queues).
  poolFirstThreads: `
    import { ThreadPool } from "${threadsLib}";
    const pool = new ThreadPool({ maxWorkers: 1 });
    await pool.submit((x: number) => x + 1, 1);
    console.log(performance.now());
    await pool.shutdown();`,
  // The same, counted from the pool's creation: the library is already loaded.
  poolFirstLoaded: `
    import { ThreadPool } from "${lib}";
    const start = performance.now();
    const pool = new ThreadPool({ maxWorkers: 1 });
    await pool.submit((x: number) => x + 1, 1);
    console.log(performance.now() - start);
    await pool.shutdown();`,
  // A bare Worker's first answer, counted from its creation.
  workerFirstLoaded: `
    const start = performance.now();
    const worker = new Worker("${echo}", { type: "module" });
    await new Promise((resolve) => { worker.onmessage = resolve; worker.postMessage(1); });
    console.log(performance.now() - start);
    worker.terminate();`,
  // The first answer from a bare Worker, counted the same way.
  workerFirst: `
    const worker = new Worker("${echo}", { type: "module" });
    await new Promise((resolve) => { worker.onmessage = resolve; worker.postMessage(1); });
    console.log(performance.now());
    worker.terminate();`,
  // 20,000 tiny tasks on a new pool of 2 threads, pool start included.
  poolTiny: `
    import { ThreadPool } from "${lib}";
    const start = performance.now();
    const pool = new ThreadPool({ maxWorkers: 2 });
    await Promise.all(Array.from({ length: 20_000 }, (_, i) => pool.submit((x: number) => x + 1, i)));
    console.log(performance.now() - start);
    await pool.shutdown();`,
  // 20,000 messages to 2 new bare workers, their start included.
  workerTiny: `
    const start = performance.now();
    const workers = [1, 2].map(() => new Worker("${echo}", { type: "module" }));
    await new Promise<void>((resolve) => {
      let replies = 0;
      for (const w of workers) w.onmessage = () => { if (++replies === 20_000) resolve(); };
      for (let i = 0; i < 20_000; i++) workers[i % 2].postMessage(i);
    });
    console.log(performance.now() - start);
    for (const w of workers) w.terminate();`,
  // 1,000,000 uncontended Mutex acquireSync + release, from the first call.
  mutex: `
    import { Mutex } from "${lib}";
    const mutex = new Mutex();
    const start = performance.now();
    for (let i = 0; i < 1_000_000; i++) { mutex.acquireSync(); mutex.release(); }
    console.log(performance.now() - start);`,
  // The same with a bare compareExchange lock on a shared word (as bench/sync_bench.ts).
  bareLock: `
    const word = new Int32Array(new SharedArrayBuffer(4));
    const start = performance.now();
    for (let i = 0; i < 1_000_000; i++) {
      while (Atomics.compareExchange(word, 0, 0, 1) !== 0) {}
      Atomics.store(word, 0, 0);
    }
    console.log(performance.now() - start);`,
  // The bare lock making one small object per hold, as acquireSync makes its lease: in a
  // fresh process the first scavenges of the young heap land in the loop.
  bareLockAllocating: `
    class Hold { #lock: Int32Array | undefined; constructor(lock: Int32Array) { this.#lock = lock; } }
    const word = new Int32Array(new SharedArrayBuffer(4));
    let hold: Hold | undefined;
    const start = performance.now();
    for (let i = 0; i < 1_000_000; i++) {
      while (Atomics.compareExchange(word, 0, 0, 1) !== 0) {}
      hold = new Hold(word);
      Atomics.store(word, 0, 0);
    }
    const took = performance.now() - start;
    if (hold === undefined) throw new Error("no hold was made");
    console.log(took);`,
};

async function run(name: string): Promise<number> {
  const file = `${dir}/${name}.ts`;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-config", file],
    cwd: here,
  }).output();
  if (code !== 0) throw new Error(`${name} failed: ${new TextDecoder().decode(stderr)}`);
  return Number(new TextDecoder().decode(stdout).trim());
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

try {
  for (const [name, source] of Object.entries(programs)) {
    await Deno.writeTextFile(`${dir}/${name}.ts`, source);
  }
  const pairs = [
    ["first result from a new ThreadPool (ms since start)", "poolFirst", "workerFirst"],
    [
      "the same, importing @parallel/core/threads (ms since start)",
      "poolFirstThreads",
      "workerFirst",
    ],
    [
      "first result from a new ThreadPool (ms from its creation)",
      "poolFirstLoaded",
      "workerFirstLoaded",
    ],
    ["20,000 tiny tasks, 2 threads, start included (ms)", "poolTiny", "workerTiny"],
    ["1,000,000 Mutex acquireSync + release (ms)", "mutex", "bareLock"],
    [
      "the same against a bare lock making an object per hold (ms)",
      "mutex",
      "bareLockAllocating",
    ],
  ] as const;
  for (const [what, ours, raw] of pairs) {
    const a: number[] = [];
    const b: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      a.push(await run(ours));
      b.push(await run(raw));
    }
    const [x, y] = [median(a), median(b)];
    const ratios = a.map((ours, round) => ours / b[round]).sort((p, q) => p - q);
    console.log(
      `${what}: ours ${x.toFixed(1)}, raw ${y.toFixed(1)}, ratio ${(x / y).toFixed(2)}× ` +
        `(round by round ${ratios[0].toFixed(2)}–${ratios.at(-1)!.toFixed(2)})`,
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
