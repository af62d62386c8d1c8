// Review findings for the redis/ module: each test pins one bug that was found and fixed.
import assert from "node:assert/strict";
import { tasks, ThreadPool } from "../mod.ts";
import { RedisPool, RedisQueue, serveRedisPool } from "../redis/mod.ts";
import { openRedisPool, redisCli, redisTest, startRedisWorker, writeJobs } from "./_redis.ts";
import { alive, failure, within } from "./_helpers.ts";
import { Buffer } from "node:buffer";
import { jobItem } from "../redis/_protocol.ts";
import { itemToBytes } from "../queue/_ring.ts";

const work = tasks<typeof import("./_redis_tasks.ts")>(
  new URL("./_redis_tasks.ts", import.meta.url),
);
const here = new URL("./", import.meta.url).href;

/** A worker in this process, on a ThreadPool of one; closed by `await using`. */
async function localWorker(url: string, name: string, modules: string[] = [here]) {
  const worker = await serveRedisPool({
    url,
    name,
    pool: new ThreadPool({ maxWorkers: 1 }),
    modules,
    concurrency: 1,
  });
  return Object.assign(worker, { [Symbol.asyncDispose]: () => within(worker.close(), 30_000) });
}

redisTest(
  "review: shutdown(), disconnect() and a worker's close() end while the server is down",
  async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const url = `redis://127.0.0.1:${port}`;
    const server = await ownServer(port);
    const pool = new RedisPool({ url, name: "down" });
    const queue = new RedisQueue<number>({ url, name: "down" });
    try {
      await using _worker = await localWorker(url, "down");
      assert.equal(await within(pool.submit(work.add, 1, 1), 20_000), 2);
      await queue.put(1);
      assert.equal(await queue.get(), 1);
      const waiting = queue.get().catch((error) => error);
      await server.stop();
      await within(pool.shutdown(), 15_000);
      await within(queue.disconnect(), 15_000);
      await within(waiting, 15_000);
      // Nor does the worker's close() wait for the server: what it held runs again elsewhere.
      await within(_worker.close(), 15_000);
    } finally {
      await server.stop().catch(() => {});
    }
  },
);

redisTest(
  "review: a worker refuses ..%2f (Deno decodes it to a real ..) and a sibling of a prefix without a slash",
  async ({ url }) => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.mkdir(`${dir}/work`);
      await Deno.mkdir(`${dir}/workshop`);
      const source = `export function who() { return "EVIL"; }`;
      await Deno.writeTextFile(`${dir}/evil.ts`, source);
      await Deno.writeTextFile(`${dir}/workshop/evil.ts`, source);
      await Deno.writeTextFile(`${dir}/work/good.ts`, `export function who() { return "ok"; }`);
      const base = new URL(`file://${dir}/`).href;
      {
        await using _worker = await localWorker(url, "trust", [`${base}work/`]);
        await using pool = openRedisPool({ url, name: "trust" });
        const good = tasks<{ who(): string }>(`${base}work/good.ts`);
        assert.equal(await within(pool.submit(good.who), 20_000), "ok");
        const escape = tasks<{ who(): string }>(`${base}work/..%2fevil.ts`);
        const error = await failure(pool.submit(escape.who), 20_000);
        assert.match(error.message, /refused task module/);
        const upper = tasks<{ who(): string }>(`${base}work/..%2Fevil.ts`);
        assert.match((await failure(pool.submit(upper.who), 20_000)).message, /refused/);
      }
      {
        // "file:///…/work" (no slash) must not open "file:///…/workshop/".
        await using _worker = await localWorker(url, "trust2", [`${base}work`]);
        await using pool = openRedisPool({ url, name: "trust2" });
        const good = tasks<{ who(): string }>(`${base}work/good.ts`);
        assert.equal(await within(pool.submit(good.who), 20_000), "ok");
        const sibling = tasks<{ who(): string }>(`${base}workshop/evil.ts`);
        const error = await failure(pool.submit(sibling.who), 20_000);
        assert.match(error.message, /refused task module/);
      }
      await assert.rejects(
        serveRedisPool({
          url,
          name: "x",
          pool: new ThreadPool({ maxWorkers: 1 }),
          modules: [here],
          allowInline: "no" as never,
        }),
        { name: "TypeError", message: /'allowInline' must be a boolean/ },
      );
      await assert.rejects(
        serveRedisPool({
          url,
          name: "x",
          pool: new ThreadPool({ maxWorkers: 1 }),
          modules: ["/srv/work/"],
        }),
        { name: "TypeError", message: /'modules'.*"\/srv\/work\/" is not an absolute URL/ },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

redisTest(
  "review: a job hash of the wrong type does not crash a worker",
  async (server) => {
    const worker = startRedisWorker(server, "garbage");
    try {
      await using pool = openRedisPool({ url: server.url, name: "garbage" });
      assert.equal(await within(pool.submit(work.add, 1, 1), 30_000), 2);
      for (let i = 0; i < 4; i++) {
        await redisCli(server.url, "SET", `parallel:pool:{garbage}:job:bad${i}`, "not a hash");
        await redisCli(server.url, "RPUSH", "parallel:pool:{garbage}:tasks", `bad${i}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.ok(alive(worker.pid), "the worker process died");
      const results = await within(
        Promise.all(Array.from({ length: 4 }, (_, i) => pool.submit(work.add, i, 10))),
        30_000,
      );
      assert.deepEqual(results, [10, 11, 12, 13]);
    } finally {
      await worker.stop();
    }
  },
);

redisTest(
  "review: garbage in a submitter's results queue fails no task and stops no reading",
  async ({ url }) => {
    await using pool = openRedisPool({ url, name: "forged" });
    const task = pool.submit(work.add, 2, 3);
    let ids: string[] = [];
    for (let i = 0; i < 100 && ids.length === 0; i++) {
      ids = (await redisCli(url, "LRANGE", "parallel:pool:{forged}:tasks", "0", "-1")).split("\n")
        .filter(Boolean);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const client = ids[0].split(":")[0];
    const key = `parallel:queue:{pool:forged:results:${client}}:items`;
    // A string that is not JSON, an empty item, a short number, an unknown tag, null, a forged error.
    await redisCli(url, "RPUSH", key, "\x07not json", "", "\x04", "\x63", "\x01");
    await new Promise((resolve) => setTimeout(resolve, 300));
    await using _worker = await localWorker(url, "forged");
    assert.equal(await within(task, 20_000), 5);
    assert.equal(await within(pool.submit(work.add, 1, 2), 20_000), 3);
  },
);

redisTest(
  "review: a worker whose registration was lost (Redis restarted) registers again, so its tasks are recovered",
  async (server) => {
    const first = startRedisWorker(server, "again");
    let second: ReturnType<typeof startRedisWorker> | undefined;
    try {
      await using pool = openRedisPool({ url: server.url, name: "again", stalledAfter: 1_000 });
      await using started = new RedisQueue<number>({ url: server.url, name: "started" });
      assert.equal(await within(pool.submit(work.add, 1, 1), 30_000), 2);
      // A restart of a server without persistence: every key is gone.
      await redisCli(server.url, "FLUSHALL");
      // It registers again with a sign of life (every 250 ms), before it takes the task.
      const workers = "parallel:pool:{again}:workers";
      for (let i = 0; (await redisCli(server.url, "SCARD", workers)) !== "1"; i++) {
        assert.ok(i < 500, "the worker did not register again");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const long = pool.submit(work.startThenWait, server.url, "started", 1_000);
      assert.equal(await started.get({ timeout: 30_000 }), first.pid);
      await first.stop("SIGKILL");
      second = startRedisWorker(server, "again");
      assert.equal(await within(long, 20_000), second.pid);
    } finally {
      await first.stop();
      await second?.stop();
    }
  },
);

async function ownServer(port: number) {
  const child = new Deno.Command("redis-server", {
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 500; i++) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  return {
    async stop() {
      child.kill("SIGKILL");
      await child.status;
    },
  };
}

redisTest(
  "review: a pool whose server was unreachable at first works once it is up",
  async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const url = `redis://127.0.0.1:${port}`;
    await using pool = openRedisPool({ url, name: "late" });
    const error = await failure(pool.submit(work.add, 1, 1), 20_000);
    assert.match(error.message, /cannot reach Redis at/);
    const server = await ownServer(port);
    try {
      await using _worker = await localWorker(url, "late");
      assert.equal(await within(pool.submit(work.add, 2, 2), 20_000), 4);
      await pool.shutdown();
    } finally {
      await server.stop();
    }
  },
);

redisTest(
  "review: a malformed job held by a dead worker does not stop the recovery of the others",
  async ({ url }) => {
    await using pool = openRedisPool({ url, name: "recover", stalledAfter: 1_000 });
    const task = pool.submit(work.add, 20, 22);
    // A dead worker "ghost" took the real job, and holds one whose job hash has fields missing.
    let taken = "";
    for (let i = 0; i < 100 && taken === ""; i++) {
      taken = await redisCli(
        url,
        "LMOVE",
        "parallel:pool:{recover}:tasks",
        "parallel:pool:{recover}:running:ghost",
        "LEFT",
        "RIGHT",
      );
      if (taken === "") await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await redisCli(url, "HSET", "parallel:pool:{recover}:job:bad", "attempts", "1");
    await redisCli(url, "RPUSH", "parallel:pool:{recover}:running:ghost", "bad\nx\n0\n0\n");
    await redisCli(url, "SADD", "parallel:pool:{recover}:workers", "ghost");
    await using _worker = await localWorker(url, "recover");
    assert.equal(await within(task, 20_000), 42);
  },
);

redisTest(
  "review: a pool front leaves no keys of its own in Redis after shutdown",
  async ({ url }) => {
    {
      await using _worker = await localWorker(url, "tidy");
      const pool = new RedisPool({ url, name: "tidy" });
      assert.equal(await within(pool.submit(work.add, 1, 1), 20_000), 2);
      await within(pool.shutdown(), 20_000);
    }
    const left = await redisCli(url, "KEYS", "parallel:queue:*");
    assert.equal(left, "", `left behind: ${left}`);
  },
);

redisTest(
  "review: a server restarted (with its data) while a task runs: the task still settles with its result",
  async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const url = `redis://127.0.0.1:${port}`;
    const dir = await Deno.makeTempDir();
    const launch = async () => {
      const child = new Deno.Command("redis-server", {
        args: ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", ""]
          .concat(["--appendonly", "yes", "--appendfsync", "always"]),
        stdout: "null",
        stderr: "null",
      }).spawn();
      for (let i = 0; i < 500; i++) {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port })).close();
          break;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
      return child;
    };
    let server = await launch();
    const worker = startRedisWorker({ url, pid: server.pid }, "restart");
    try {
      await using pool = openRedisPool({ url, name: "restart" });
      await using started = new RedisQueue<number>({ url, name: "started" });
      assert.equal(await within(pool.submit(work.add, 1, 1), 30_000), 2);
      const long = pool.submit(work.startThenWait, url, "started", 1_000);
      assert.equal(await started.get({ timeout: 30_000 }), worker.pid);
      server.kill("SIGTERM");
      await server.status;
      await new Promise((resolve) => setTimeout(resolve, 2_000)); // the task ends meanwhile
      server = await launch();
      assert.equal(await within(long, 20_000), worker.pid);
    } finally {
      await worker.stop();
      try {
        server.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await server.status;
      await Deno.remove(dir, { recursive: true });
    }
  },
);

redisTest(
  "review: a forged job whose hash is not a hash strands none of the jobs a worker took with it",
  async ({ url }) => {
    const keys = "parallel:pool:{forgery}:";
    await using worker = await localWorker(url, "forgery");
    await using pool = openRedisPool({ url, name: "forgery" });
    // Warm up: the worker sizes its batches from measured run times, so it takes several at once.
    await within(
      Promise.all(Array.from({ length: 200 }, (_, i) => pool.submit(work.add, i, 0))),
      30_000,
    );
    // Jobs as a submitter "test-client" makes them, and forged ones among them: their items name
    // job keys that hold strings. All arrive at once: the worker takes them in batches.
    await using results = new RedisQueue<{ id: string; value: unknown }>({
      url,
      name: "pool:forgery:results:test-client",
    });
    // deno-lint-ignore no-import-prefix
    const { createClient } = await import("npm:redis@5.9.0");
    const redis = createClient({ url });
    await redis.connect();
    const count = 80;
    try {
      const items: Buffer[] = [];
      for (let i = 0; i < count; i++) {
        if (i % 10 === 5) {
          await redis.set(`${keys}job:forged-${i}`, "not a hash");
          items.push(Buffer.from(`forged-${i}\ntest-client\n0\n0\n`));
        }
        const item = Buffer.from(jobItem({
          id: `real-${i}`,
          client: "test-client",
          timeout: 0,
          stalledAfter: 30_000,
          body: itemToBytes({
            fn: { module: work.add.module, name: "add" },
            mode: "call",
            args: [i, 1],
          }),
        }));
        await redis.hSet(`${keys}job:real-${i}`, {
          item,
          client: "test-client",
          maxAttempts: "3",
          attempts: "0",
        });
        items.push(item);
      }
      await redis.rPush(`${keys}tasks`, items);
    } finally {
      await redis.close();
    }
    const got = new Map<string, unknown>();
    while (got.size < count) {
      const result = await results.get({ timeout: 20_000 });
      got.set(result.id, result.value);
    }
    assert.deepEqual(
      [...got].sort(([a], [b]) => a.localeCompare(b)),
      Array.from({ length: count }, (_, i) => [`real-${i}`, i + 1])
        .sort(([a], [b]) => String(a).localeCompare(String(b))),
    );
    // The forged items do not stay in the worker's running list for ever.
    const running = `${keys}running:${worker.id}`;
    for (let i = 0; (await redisCli(url, "LLEN", running)) !== "0"; i++) {
      assert.ok(i < 500, "forged items stay in the worker's running list");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  },
);

redisTest(
  "review: workers in Redis whose running key is not a list do not stop a cancel reaching a task's worker",
  async (server) => {
    const { url } = server;
    const keys = "parallel:pool:{ghosts}:";
    const worker = startRedisWorker(server, "ghosts");
    try {
      await using pool = openRedisPool({ url, name: "ghosts" });
      await using told = new RedisQueue<string>({ url, name: "told" });
      assert.equal(await within(pool.submit(work.add, 1, 1), 30_000), 2);
      const id = await redisCli(url, "SRANDMEMBER", `${keys}workers`);
      // Workers listed in Redis (whoever can write there can add some) whose running key is a
      // string: many, so that the set lists some before the real one.
      for (let i = 0; i < 50; i++) {
        await redisCli(url, "SET", `${keys}running:ghost-${i}`, "not a list");
        await redisCli(url, "SADD", `${keys}workers`, `ghost-${i}`);
      }
      const running = pool.submit(work.waitForCancel, url, "told", 20_000);
      for (let i = 0; (await redisCli(url, "LLEN", `${keys}running:${id}`)) !== "1"; i++) {
        assert.ok(i < 500, "the worker did not take the task");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // Taken is not started: a task cancelled before it starts never says "cancelled".
      assert.equal(await told.get({ timeout: 20_000 }), "started");
      running.cancel();
      assert.equal((await failure(running)).name, "CancelledError");
      assert.equal(await told.get({ timeout: 10_000 }), "cancelled");
    } finally {
      await worker.stop();
    }
  },
);

redisTest(
  "review: a task that reaches a worker as it closes, moved by its last wait, still settles",
  async ({ url }) => {
    await using pool = openRedisPool({ url, name: "leaving" });
    const first = await localWorker(url, "leaving");
    // The worker is idle once this is done: it waits for the next task in Redis.
    assert.equal(await within(pool.submit(work.add, 1, 1), 20_000), 2);
    const closing = first.close();
    const task = pool.submit(work.add, 2, 3);
    await within(closing, 30_000);
    await using _second = await localWorker(url, "leaving");
    assert.equal(await within(task, 20_000), 5);
  },
);

redisTest(
  "review: garbage read in one batch with a result does not lose the result",
  async ({ url }) => {
    await using pool = openRedisPool({ url, name: "mixed" });
    const task = pool.submit(work.add, 2, 3);
    let id = ""; // the first line of the job's item: `${client}:${number}`
    for (let i = 0; id === ""; i++) {
      assert.ok(i < 500, "the task never reached Redis");
      id = (await redisCli(url, "LRANGE", "parallel:pool:{mixed}:tasks", "0", "0")).split("\n")[0];
      if (id === "") await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const client = id.split(":")[0];
    const result = new TextDecoder().decode(itemToBytes({ id, status: 0, value: 5 }));
    // No worker: the result is written here, after an item the reader takes alone (a wait moves
    // one) and an item that is no item at all (an empty string); the last two come in one batch.
    await redisCli(
      url,
      "RPUSH",
      `parallel:queue:{pool:mixed:results:${client}}:items`,
      "\x04",
      "",
      result,
    );
    assert.equal(await within(task, 10_000), 5);
  },
);

redisTest(
  "review: a worker that closes gives back the jobs it held and never ran (a lost take's orphans)",
  async ({ url }) => {
    const leaving = await localWorker(url, "leaving");
    // A job in its running list it never heard of, as a take whose reply was lost leaves one.
    await writeJobs(url, "leaving", `running:${leaving.id}`, [{ id: "orphan-2", args: [2, 3] }]);
    await within(leaving.close(), 20_000);
    await using _next = await localWorker(url, "leaving");
    await using results = new RedisQueue<{ id: string; value: unknown }>({
      url,
      name: "pool:leaving:results:test-client",
    });
    const result = await results.get({ timeout: 20_000 });
    assert.equal(result.id, "orphan-2");
    assert.equal(result.value, 5);
  },
);

redisTest(
  "review: a task a closing worker's last wait moved, and that runs past the results' grace, runs once",
  async ({ url }) => {
    await using pool = openRedisPool({ url, name: "longleave", maxAttempts: 1 });
    await using started = new RedisQueue<number>({ url, name: "started" });
    const first = await localWorker(url, "longleave");
    // Just after the idle worker starts a wait for a task in Redis (a blocking move; nothing else
    // blocks yet), so that its wait is the one that moves the task.
    const moves = async () =>
      Number(
        /cmdstat_blmove:calls=(\d+)/.exec(await redisCli(url, "INFO", "commandstats"))?.[1] ?? 0,
      );
    const before = await moves();
    for (let i = 0; await moves() === before; i++) {
      assert.ok(i < 500, "the worker did not wait for a task");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const closing = first.close();
    // Its last wait moves this one, which runs longer than the 5 s a close gives results.
    const task = pool.submit(work.startThenWait, url, "started", 7_000);
    assert.equal(await started.get({ timeout: 10_000 }), Deno.pid);
    // Another worker is there should the closing one give the task back.
    await using _second = await localWorker(url, "longleave");
    assert.equal(await within(task, 30_000), Deno.pid);
    await within(closing, 30_000);
    // It ran once: the closing worker held it and finished it.
    assert.equal(await started.tryGet(), undefined);
  },
);

redisTest(
  "review: a closing worker does not give back a held job that was cancelled (it would run again)",
  async ({ url }) => {
    const leaving = await localWorker(url, "leavecancel");
    // A job in its running list it never heard of (a take whose reply was lost), which its
    // submitter then cancelled: WITHDRAW marked it cancelled and told this worker.
    await writeJobs(url, "leavecancel", `running:${leaving.id}`, [
      { id: "orphan-3", args: [2, 3], fields: { cancelled: "1" } },
    ]);
    await within(leaving.close(), 20_000);
    // As the recovery of a dead worker's jobs would: dropped, not put back to run.
    assert.equal(await redisCli(url, "LLEN", "parallel:pool:{leavecancel}:tasks"), "0");
    assert.equal(await redisCli(url, "EXISTS", "parallel:pool:{leavecancel}:job:orphan-3"), "0");
  },
);

redisTest(
  "review: a worker does not adopt and run a held job it never heard of that was cancelled",
  async ({ url }) => {
    await using worker = await localWorker(url, "adoptcancel");
    // As in the test before: an orphan of a lost take, cancelled by its submitter. The cancel
    // reached the worker, which did not know the job yet.
    await using results = new RedisQueue<{ id: string; value: unknown }>({
      url,
      name: "pool:adoptcancel:results:test-client",
    });
    const running = `parallel:pool:{adoptcancel}:running:${worker.id}`;
    await writeJobs(url, "adoptcancel", `running:${worker.id}`, [
      { id: "orphan-4", args: [2, 3], fields: { cancelled: "1" } },
    ]);
    await redisCli(url, "RPUSH", `parallel:pool:{adoptcancel}:cancel:${worker.id}`, "orphan-4");
    // The worker looks at its running list about once a second: the orphan goes, run or not.
    for (let i = 0; (await redisCli(url, "LLEN", running)) !== "0"; i++) {
      assert.ok(i < 500, "the orphan stays in the worker's running list");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(await results.tryGet(), undefined, "the cancelled job ran");
    assert.equal(await redisCli(url, "EXISTS", "parallel:pool:{adoptcancel}:job:orphan-4"), "0");
  },
);

redisTest(
  "review: a cancel that comes while a worker closes still reaches the task it runs",
  async ({ url }) => {
    const worker = await localWorker(url, "closing-cancel");
    try {
      await using pool = openRedisPool({ url, name: "closing-cancel" });
      await using told = new RedisQueue<string>({ url, name: "told" });
      const task = pool.submit(work.waitForCancel, url, "told", 60_000);
      const deadline = Date.now() + 20_000;
      while (
        await redisCli(url, "LLEN", `parallel:pool:{closing-cancel}:running:${worker.id}`) !== "1"
      ) {
        if (Date.now() > deadline) throw new Error("the worker never took the task");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // It runs: a task cancelled before it starts would not test the cancel reaching it.
      assert.equal(await told.get({ timeout: 20_000 }), "started");
      const closing = worker.close();
      // Later than one blocking wait of the worker's cancel loop (half a second).
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      task.cancel();
      assert.equal((await failure(task)).name, "CancelledError");
      // The task would wait a minute unless the cancel reaches it on the closing worker.
      await within(closing, 20_000);
    } finally {
      await within(worker.close(), 90_000);
    }
  },
);
