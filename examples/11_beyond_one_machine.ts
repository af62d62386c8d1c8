/**
 * Beyond one machine: when one machine's cores are not enough, Python users
 * reach for Celery or RQ and a shared broker. Here the broker is Redis, and
 * the API is the one this guide already used: a pool and a queue.
 *
 * This example starts a local `redis-server` if the machine has one (else it
 * says how to get one and stops), two worker processes as two machines would
 * run them (`redis/worker.ts`), and shows which worker ran each task.
 *
 * @module
 */

import { tasks } from "../mod.ts";
import { RedisPool, RedisQueue } from "../redis/mod.ts";

const work = tasks<typeof import("./_process_work.ts")>(
  new URL("./_process_work.ts", import.meta.url),
);

/** A redis-server on a free loopback port, or `undefined` when the machine has none. */
async function startRedis(): Promise<{ url: string; stop(): Promise<void> } | undefined> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("redis-server", {
      args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      stdout: "null",
      stderr: "null",
    }).spawn();
  } catch {
    return undefined;
  }
  for (let tries = 0; tries < 200; tries++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      child.kill("SIGKILL");
      await child.status;
    },
  };
}

/** Runs the example. */
export async function main(): Promise<void> {
  const redis = await startRedis();
  if (redis === undefined) {
    console.log(
      "No redis-server on this machine: install one (apt-get install -y redis-server, or any\n" +
        "Redis or Valkey) to run this chapter. Skipped.",
    );
    return;
  }
  const workerModule = new URL("../redis/worker.ts", import.meta.url).pathname;
  const modules = new URL("./", import.meta.url).href;
  // On real machines: deno run -A jsr:@parallel/core/redis/worker --url … --name … --modules …
  const workers = [1, 2].map(() =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", workerModule, "--url", redis.url, "--name", "demo", "--workers", "1"]
        .concat(["--modules", modules]),
      stdout: "piped",
    }).spawn()
  );
  try {
    // Each worker says "serving …" once it has registered with the pool.
    await Promise.all(workers.map(async (worker) => {
      const reader = worker.stdout.pipeThrough(new TextDecoderStream()).getReader();
      for (let seen = ""; !seen.includes("serving");) {
        const { value, done } = await reader.read();
        if (done) throw new Error("a worker ended before it served the pool");
        seen += value;
      }
      reader.releaseLock();
    }));
    const names = new Map(workers.map((worker, i) => [worker.pid, `worker ${i + 1}`]));
    await using pool = new RedisPool({ url: redis.url, name: "demo" });
    console.log("fib on two workers through Redis, one task each:");
    const results = await Promise.all(
      [25, 26, 27, 28, 29, 30].map((n) => pool.submit(work.whichWorker, n)),
    );
    for (const { n, fib, pid } of results) {
      console.log(`  fib(${n}) = ${fib}`.padEnd(24) + `ran on ${names.get(pid) ?? pid}`);
    }

    await using queue = new RedisQueue<string>({ url: redis.url, name: "greetings" });
    await queue.put("hello from this process");
    await using other = new RedisQueue<string>({ url: redis.url, name: "greetings" });
    console.log(
      `A RedisQueue, read through another handle: "${await other.get({ timeout: 5_000 })}"`,
    );
  } finally {
    for (const worker of workers) worker.kill("SIGTERM");
    await Promise.all(workers.map((worker) => worker.stdout.cancel().catch(() => {})));
    await Promise.all(workers.map((worker) => worker.status));
    await redis.stop();
  }
}

if (import.meta.main) await main();
