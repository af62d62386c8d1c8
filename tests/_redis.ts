// A real redis-server for the Redis tests: one per test, on a free loopback port, stopped by
// its pid. Without redis-server the tests are skipped, saying so, unless
// PARALLEL_CORE_REQUIRE_REDIS is set (as .ci/run sets it): then they fail. Also the helpers the
// Redis tests share: a worker process, a pool front that cannot hang, redis-cli.
import { RedisPool } from "../redis/mod.ts";
import { within } from "./_helpers.ts";
import { Buffer } from "node:buffer";
import { jobItem } from "../redis/_protocol.ts";
import { itemToBytes } from "../queue/_ring.ts";

const SERVER = "redis-server";

function installed(): boolean {
  try {
    return new Deno.Command(SERVER, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const available = installed();
const required = Deno.env.get("PARALLEL_CORE_REQUIRE_REDIS") !== undefined;
let skipped = 0;

if (!available && !required) {
  globalThis.addEventListener("unload", () => {
    console.log(
      `Skipped ${skipped} Redis tests: redis-server was not found. Install it ` +
        `(apt-get install -y redis-server) to run them.`,
    );
  });
}

/** A running redis-server. */
export interface RedisServer {
  readonly url: string;
  readonly pid: number;
}

async function start(): Promise<RedisServer & { stop(): Promise<void> }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const child = new Deno.Command(SERVER, {
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(new TextEncoder().encode("PING\r\n"));
      const reply = new Uint8Array(16);
      const n = await conn.read(reply);
      conn.close();
      if (new TextDecoder().decode(reply.subarray(0, n ?? 0)).startsWith("+PONG")) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await child.status;
      throw new Error(`redis-server did not start on port ${port}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid,
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await child.status;
    },
  };
}

/** A test that gets its own redis-server; skipped (or failed, when required) without one. */
export function redisTest(name: string, fn: (server: RedisServer) => Promise<void>): void {
  if (!available && !required) skipped++;
  Deno.test({
    name,
    ignore: !available && !required,
    async fn() {
      if (!available) {
        throw new Error(
          "redis-server is required here (PARALLEL_CORE_REQUIRE_REDIS) but not found",
        );
      }
      const server = await start();
      try {
        await fn(server);
      } finally {
        await server.stop();
      }
    },
  });
}

const testsDir = new URL("./", import.meta.url).href;
const workerModule = new URL("../redis/worker.ts", import.meta.url).pathname;

/**
 * Starts a worker process (redis/worker.ts, 2 threads) serving pool `name`,
 * trusting the task modules of tests/; `stop()` ends it with `signal`.
 */
export function startRedisWorker(server: RedisServer, name: string, extra: string[] = []) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", workerModule, "--url", server.url, "--name", name, "--workers", "2"]
      .concat(["--modules", testsDir], extra),
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  return {
    pid: child.pid,
    status: child.status,
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch {
        // Already gone.
      }
      await child.status;
    },
  };
}

/** A pool front for one test; its end cancels what is left, so a broken test cannot hang. */
export function openRedisPool(options: ConstructorParameters<typeof RedisPool>[0]) {
  const pool = new RedisPool(options);
  return Object.assign(pool, {
    [Symbol.asyncDispose]: () => within(pool.shutdown({ cancelPending: true }), 30_000),
  });
}

/** Runs `redis-cli -u url args…`; returns what it printed. */
export async function redisCli(url: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("redis-cli", { args: ["-u", url, ...args], stderr: "null" })
    .output();
  return new TextDecoder().decode(out.stdout).trim();
}

/**
 * A TCP proxy in front of a redis-server, for faults a test must place exactly: `loseReply(text)`
 * lets the next command that holds `text` through, then drops its connection in place of the
 * reply (a reply lost with a dropped connection), and with `holdMs` holds the connections made
 * after it that long before they reach the server; `die(text)` drops every connection and stops
 * listening when a command holds `text`, before it reaches the server (a server gone mid-command).
 */
export function redisProxy(url: string) {
  const target = new URL(url);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const pumps: Promise<void>[] = [];
  let lose: string | undefined;
  let holdMs = 0;
  let holdUntil = 0;
  let dieOn: string | undefined;
  let closed = false;
  const close = (conn: Deno.Conn) => {
    conns.delete(conn);
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  };
  const stop = () => {
    if (closed) return;
    closed = true;
    listener.close();
    for (const conn of [...conns]) close(conn);
  };
  const pump = async (
    from: Deno.Conn,
    to: Deno.Conn,
    pass: (chunk: Uint8Array) => boolean,
  ) => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buffer);
        if (n === null || !pass(buffer.subarray(0, n))) break;
        for (let at = 0; at < n;) at += await to.write(buffer.subarray(at, n));
      }
    } catch {
      // A side closed.
    } finally {
      close(from);
      close(to);
    }
  };
  const accepting = (async () => {
    try {
      for await (const client of listener) {
        const wait = holdUntil - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        const server = await Deno.connect({
          hostname: target.hostname,
          port: Number(target.port),
        });
        conns.add(client).add(server);
        let losing = false;
        pumps.push(pump(client, server, (chunk) => {
          const text = new TextDecoder().decode(chunk);
          if (dieOn !== undefined && text.includes(dieOn)) {
            stop();
            return false;
          }
          if (lose !== undefined && text.includes(lose)) {
            lose = undefined;
            losing = true;
            holdUntil = Date.now() + holdMs;
          }
          return true;
        }));
        pumps.push(pump(server, client, () => !losing));
      }
    } catch {
      // The listener closed.
    }
  })();
  return {
    url: `redis://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    loseReply(text: string, options?: { holdMs?: number }) {
      lose = text;
      holdMs = options?.holdMs ?? 0;
    },
    die(text: string) {
      dieOn = text;
    },
    async [Symbol.asyncDispose]() {
      stop();
      await accepting;
      await Promise.all(pumps);
    },
  };
}

/**
 * Writes jobs straight into a pool's keys, as a submitter "test-client" makes them (hash and
 * list item), each running `add(a, b)` of tests/_redis_tasks.ts, and pushes their items onto
 * `list` (the pool's `tasks`, or a worker's `running` as a take whose reply was lost leaves one).
 * `fields` adds to each job's hash (`cancelled: "1"`, as WITHDRAW marks one). Returns the items.
 */
export async function writeJobs(
  url: string,
  pool: string,
  list: string,
  jobs: { id: string; args: [number, number]; fields?: Record<string, string> }[],
): Promise<Buffer[]> {
  const add = new URL("./_redis_tasks.ts", import.meta.url).href;
  const items = jobs.map(({ id, args }) =>
    Buffer.from(jobItem({
      id,
      client: "test-client",
      timeout: 0,
      stalledAfter: 30_000,
      body: itemToBytes({ fn: { module: add, name: "add" }, mode: "call", args }),
    }))
  );
  // deno-lint-ignore no-import-prefix
  const { createClient } = await import("npm:redis@5.9.0");
  const redis = createClient({ url });
  await redis.connect();
  try {
    for (const [i, { id, fields }] of jobs.entries()) {
      await redis.hSet(`parallel:pool:{${pool}}:job:${id}`, {
        item: items[i],
        client: "test-client",
        maxAttempts: "3",
        attempts: "0",
        ...fields,
      });
    }
    await redis.rPush(`parallel:pool:{${pool}}:${list}`, items);
  } finally {
    await redis.close();
  }
  return items;
}
