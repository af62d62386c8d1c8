// Tiny tasks through Redis with two worker processes: RedisPool + serveRedisPool against BullMQ,
// the same local redis-server, in the same run. Skipped (saying so) without redis-server.
//   deno bench -A bench/redis_bench.ts
// deno-lint-ignore no-import-prefix
import { Queue, QueueEvents } from "npm:bullmq@5.47.3";
import { tasks } from "../mod.ts";
import { RedisPool } from "../redis/mod.ts";

const TASKS = 2_000;
const ROUND_TRIPS = 100;
const work = tasks<typeof import("./_redis_tasks.ts")>(
  new URL("./_redis_tasks.ts", import.meta.url),
);

async function startRedis(): Promise<{ port: number; child: Deno.ChildProcess } | undefined> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  try {
    const child = new Deno.Command("redis-server", {
      args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      stdout: "null",
    }).spawn();
    for (let i = 0; i < 200; i++) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        return { port, child };
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }
  } catch {
    // No redis-server.
  }
  return undefined;
}

/** Starts a process and waits for its first line on stdout (its "ready"). */
async function startProcess(args: string[]): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(Deno.execPath(), { args, stdout: "piped" }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  for (let seen = ""; !seen.includes("\n");) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${args.join(" ")} ended before it was ready`);
    seen += value;
  }
  reader.releaseLock();
  return child;
}

const redis = await startRedis();
if (redis === undefined) {
  console.log(
    "redis_bench: no redis-server on this machine (apt-get install -y redis-server); skipped",
  );
} else {
  const url = `redis://127.0.0.1:${redis.port}`;
  const here = new URL("./", import.meta.url).href;
  const workerModule = new URL("../redis/worker.ts", import.meta.url).pathname;
  const ours = await Promise.all(
    [1, 2].map(() =>
      startProcess(["run", "-A", workerModule, "--url", url, "--name", "bench", "--workers", "1"]
        .concat(["--modules", here]))
    ),
  );
  const theirs = await Promise.all(
    [1, 2].map(() =>
      startProcess([
        "run",
        "-A",
        new URL("./_bullmq_worker.ts", import.meta.url).pathname,
        String(redis.port),
      ])
    ),
  );
  const pool = new RedisPool({ url, name: "bench" });
  await pool.submit(work.inc, 1);
  const connection = { host: "127.0.0.1", port: redis.port };
  const queue = new Queue("bench", { connection });
  const events = new QueueEvents("bench", { connection });
  await events.waitUntilReady();
  await (await queue.add("inc", { x: 1 })).waitUntilFinished(events);

  Deno.bench({
    name: `BullMQ, ${TASKS} tiny tasks, 2 worker processes of concurrency 1`,
    group: "Redis tiny tasks",
    baseline: true,
    n: 5,
    warmup: 1,
    async fn() {
      let done = 0;
      const all = new Promise<void>((resolve) => {
        const onDone = () => {
          if (++done === TASKS) {
            events.off("completed", onDone);
            resolve();
          }
        };
        events.on("completed", onDone);
      });
      await queue.addBulk(
        Array.from(
          { length: TASKS },
          (_, x) => ({ name: "inc", data: { x }, opts: { removeOnComplete: true } }),
        ),
      );
      await all;
    },
  });
  Deno.bench({
    name: `RedisPool, ${TASKS} tiny tasks, 2 worker processes of one thread`,
    group: "Redis tiny tasks",
    n: 5,
    warmup: 1,
    async fn() {
      await Promise.all(Array.from({ length: TASKS }, (_, x) => pool.submit(work.inc, x)));
    },
  });
  Deno.bench({
    name:
      `BullMQ, ${ROUND_TRIPS} tasks one after another (ms/iter ÷ ${ROUND_TRIPS} = one round trip)`,
    group: "Redis round trip",
    baseline: true,
    n: 5,
    warmup: 1,
    async fn() {
      for (let x = 0; x < ROUND_TRIPS; x++) {
        await (await queue.add("inc", { x })).waitUntilFinished(events);
      }
    },
  });
  Deno.bench({
    name: `RedisPool, ${ROUND_TRIPS} tasks one after another`,
    group: "Redis round trip",
    n: 5,
    warmup: 1,
    async fn() {
      for (let x = 0; x < ROUND_TRIPS; x++) await pool.submit(work.inc, x);
    },
  });

  globalThis.addEventListener("unload", () => {
    for (const child of [...ours, ...theirs]) child.kill("SIGKILL");
    redis.child.kill("SIGKILL");
  });
}
