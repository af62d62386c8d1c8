// RedisPool and serveRedisPool against a real redis-server, with worker processes started by
// the test (redis/worker.ts), as on other machines.
import assert from "node:assert/strict";
import { tasks } from "../mod.ts";
import { RedisPool, RedisQueue } from "../redis/mod.ts";
import {
  openRedisPool,
  redisCli,
  redisProxy,
  type RedisServer,
  redisTest,
  startRedisWorker,
  writeJobs,
} from "./_redis.ts";
import { failure, within } from "./_helpers.ts";

const work = tasks<typeof import("./_redis_tasks.ts")>(
  new URL("./_redis_tasks.ts", import.meta.url),
);
const outside = tasks<typeof import("../bench/_fib.ts")>(
  new URL("../bench/_fib.ts", import.meta.url),
);
const here = new URL("./", import.meta.url).href;
const workerModule = new URL("../redis/worker.ts", import.meta.url).pathname;

type StartedWorker = ReturnType<typeof startRedisWorker>;

async function withWorkers(
  server: RedisServer,
  name: string,
  count: number,
  body: (workers: StartedWorker[]) => Promise<void>,
): Promise<void> {
  const workers = Array.from({ length: count }, () => startRedisWorker(server, name));
  try {
    await body(workers);
  } finally {
    await Promise.all(workers.map((worker) => worker.stop()));
  }
}

redisTest("RedisPool: 1,000 tasks on two worker processes, results in order", async (server) => {
  await withWorkers(server, "render", 2, async (workers) => {
    await using pool = openRedisPool({ url: server.url, name: "render" });
    const items = Array.from({ length: 1_000 }, (_, i) => [i, 1] as [number, number]);
    assert.deepEqual(
      await within(pool.starmap(work.add, items), 60_000),
      items.map(([i]) => i + 1),
    );
    const pids = await within(
      Promise.all(Array.from({ length: 40 }, () => pool.submit(work.whoRuns))),
      30_000,
    );
    const ours = new Set(workers.map((worker) => worker.pid));
    assert.ok(pids.every((pid) => ours.has(pid)), `ran on ${[...new Set(pids)]}`);
    assert.equal(pool.stats.pendingTasks, 0);
  });
});

redisTest(
  "RedisPool: errors arrive with their class and message; untrusted tasks are refused and the worker goes on",
  async (server) => {
    await withWorkers(server, "errors", 1, async () => {
      await using pool = openRedisPool({ url: server.url, name: "errors" });
      const error = await failure(pool.submit(work.fail, "boom"), 30_000);
      assert.equal(error.name, "CustomError");
      assert.equal(error.message, "boom");
      assert.equal(error.code, 42);
      const refused = await failure(pool.submit(outside.fib, 10), 30_000);
      assert.match(
        refused.message,
        /refused task module .*bench\/_fib\.ts: it is not under the modules/,
      );
      const inline = await failure(pool.submit((x: number) => x * 2, 21), 30_000);
      assert.match(inline.message, /refused inline task/);
      // A package object's marker written by hand: the submitter's encoding refuses it (as it
      // refuses real shared objects), and the pool goes on.
      const forged = { "@parallel/core.descriptor": "Mutex", module: "file:///x.ts", state: 4 };
      assert.throws(
        () => pool.submit(work.add, forged as never, 1),
        /holds a property named "@parallel\/core.descriptor"/,
      );
      assert.equal(await within(pool.submit(work.add, 2, 3), 30_000), 5);
    });
  },
);

redisTest(
  "RedisPool: cancel reaches a running task on its worker; a timeout ends one there",
  async (server) => {
    await withWorkers(server, "cancels", 1, async () => {
      await using pool = openRedisPool({ url: server.url, name: "cancels" });
      await using told = new RedisQueue<string>({ url: server.url, name: "told" });
      const running = pool.submit(work.waitForCancel, server.url, "told", 20_000);
      // A worker holds it: a second task after it on a 2-thread worker runs at once.
      assert.equal(await within(pool.submit(work.add, 1, 1), 30_000), 2);
      // And it runs (one cancelled before it starts would never say "cancelled").
      assert.equal(await told.get({ timeout: 20_000 }), "started");
      running.cancel();
      assert.equal((await failure(running)).name, "CancelledError");
      assert.equal(await told.get({ timeout: 20_000 }), "cancelled");
      const timed = pool.apply(work.waitForCancel, [server.url, "told", 20_000], { timeout: 100 });
      assert.equal((await failure(timed, 30_000)).name, "TimeoutError");
      assert.equal(await told.get({ timeout: 20_000 }), "started");
      assert.equal(await told.get({ timeout: 20_000 }), "cancelled");
    });
  },
);

redisTest(
  "RedisPool: a worker killed mid-task: its task runs again elsewhere, once, and settles once",
  async (server) => {
    const first = startRedisWorker(server, "crash");
    let second: StartedWorker | undefined;
    try {
      await using pool = openRedisPool({ url: server.url, name: "crash", stalledAfter: 1_000 });
      await using started = new RedisQueue<number>({ url: server.url, name: "started" });
      const long = pool.submit(work.startThenWait, server.url, "started", 1_000);
      assert.equal(await started.get({ timeout: 30_000 }), first.pid);
      await first.stop("SIGKILL");
      second = startRedisWorker(server, "crash");
      assert.equal(await within(long, 30_000), second.pid);
      assert.equal(await started.get({ timeout: 5_000 }), second.pid);
      assert.equal(await started.size(), 0, "it ran more than twice");
    } finally {
      await first.stop();
      await second?.stop();
    }
  },
);

redisTest(
  "RedisPool: a task whose workers keep dying fails with WorkerCrashedError after maxAttempts",
  async (server) => {
    await using pool = openRedisPool({
      url: server.url,
      name: "doomed",
      stalledAfter: 500,
      maxAttempts: 2,
    });
    await using started = new RedisQueue<number>({ url: server.url, name: "started" });
    const doomed = pool.submit(work.startThenWait, server.url, "started", 60_000);
    for (let attempt = 0; attempt < 2; attempt++) {
      const worker = startRedisWorker(server, "doomed");
      try {
        assert.equal(await started.get({ timeout: 30_000 }), worker.pid);
      } finally {
        await worker.stop("SIGKILL");
      }
    }
    const error = await failure(doomed, 30_000);
    assert.equal(error.name, "WorkerCrashedError");
    assert.match(
      String(error.cause),
      /its worker died while running it, 2 time\(s\) \(maxAttempts: 2\)/,
    );
  },
);

redisTest(
  "RedisPool: connections dropped in the middle lose no task",
  async (server) => {
    await withWorkers(server, "drops", 2, async () => {
      await using pool = openRedisPool({ url: server.url, name: "drops" });
      const items = Array.from({ length: 600 }, (_, i) => i);
      const mapping = Promise.all(items.map((i) => pool.submit(work.add, i, 1000)));
      for (let k = 0; k < 4; k++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        await new Deno.Command("redis-cli", {
          args: ["-u", server.url, "CLIENT", "KILL", "TYPE", "normal"],
          stdout: "null",
        }).output();
      }
      assert.deepEqual(await within(mapping, 60_000), items.map((i) => i + 1000));
    });
  },
);

redisTest(
  "RedisPool: a shared object cannot go to another machine; bad options are named",
  async (server) => {
    await using pool = openRedisPool({ url: server.url, name: "bad" });
    const { Mutex } = await import("../mod.ts");
    assert.throws(() => pool.submit(work.add, new Mutex() as never, 1), {
      name: "SerializationError",
      message: /Mutex lives in this machine's memory and cannot go to another machine/,
    });
    assert.throws(() => new RedisPool({ url: server.url, name: "x", maxAttempts: 0 }), {
      name: "RangeError",
      message: /'maxAttempts'/,
    });
    assert.throws(() => new RedisPool({ url: server.url, name: "x", stalled: 1 } as never), {
      name: "TypeError",
      message: /unknown option 'stalled'/,
    });
  },
);

redisTest(
  "RedisPool: a worker adopts a job in its running list that it never heard of (a lost take reply)",
  async (server) => {
    await withWorkers(server, "orphans", 1, async () => {
      await using results = new RedisQueue<unknown>({
        url: server.url,
        name: "pool:orphans:results:test-client",
      });
      // Wait until the worker has registered, then put a job straight into its running list, as a
      // take whose reply was lost leaves it.
      let worker = "";
      for (let i = 0; i < 200 && worker === ""; i++) {
        worker = await redisCli(server.url, "SRANDMEMBER", "parallel:pool:{orphans}:workers");
        if (worker === "") await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.notEqual(worker, "", "the worker did not register");
      await writeJobs(server.url, "orphans", `running:${worker}`, [
        { id: "orphan-1", args: [2, 3] },
      ]);
      const result = await results.get({ timeout: 20_000 }) as { id: string; value: unknown };
      assert.equal(result.id, "orphan-1");
      assert.equal(result.value, 5);
    });
  },
);

Deno.test("the shell worker and serveRedisPool name a bad worker count", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      workerModule,
      "--url",
      "redis://127.0.0.1:1",
      "--name",
      "x",
      "--workers",
      "abc",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.match(
    new TextDecoder().decode(out.stderr),
    /--workers must be a whole number >= 1: current value is NaN/,
  );
  const { serveRedisPool } = await import("../redis/mod.ts");
  const { ThreadPool } = await import("../mod.ts");
  await using pool = new ThreadPool({ maxWorkers: 1 });
  await assert.rejects(
    serveRedisPool({
      url: "redis://127.0.0.1:1",
      name: "x",
      pool,
      modules: [here],
      concurrency: 0,
    }),
    { name: "RangeError", message: /'concurrency'/ },
  );
});

redisTest(
  "RedisPool: a flood of tiny tasks, some failing, taken in batches: each settles once, rightly",
  async (server) => {
    await withWorkers(server, "flood", 2, async () => {
      await using pool = openRedisPool({ url: server.url, name: "flood" });
      // Warm up: workers size their batches from measured run times.
      await within(
        Promise.all(Array.from({ length: 200 }, (_, i) => pool.submit(work.add, i, 0))),
        30_000,
      );
      const outcomes = await within(
        Promise.allSettled(
          Array.from(
            { length: 1_000 },
            (_, i) => i % 7 === 3 ? pool.submit(work.fail, `no ${i}`) : pool.submit(work.add, i, 1),
          ),
        ),
        60_000,
      );
      outcomes.forEach((outcome, i) => {
        if (i % 7 === 3) {
          assert.equal(outcome.status, "rejected");
          assert.equal((outcome as PromiseRejectedResult).reason.message, `no ${i}`);
        } else {
          assert.deepEqual(outcome, { status: "fulfilled", value: i + 1 });
        }
      });
      assert.equal(pool.stats.pendingTasks, 0);
      assert.equal(pool.stats.failedTasks, outcomes.filter((o) => o.status === "rejected").length);
    });
  },
);

redisTest(
  "RedisPool: a task cancelled while its worker is dead is not run again; the dead worker's keys go",
  async (server) => {
    const keys = "parallel:pool:{dead}:";
    const cli = (...args: string[]) => redisCli(server.url, ...args);
    const first = startRedisWorker(server, "dead");
    let second: StartedWorker | undefined;
    try {
      await using pool = openRedisPool({ url: server.url, name: "dead", stalledAfter: 1_000 });
      await using started = new RedisQueue<number>({ url: server.url, name: "started" });
      const long = pool.submit(work.startThenWait, server.url, "started", 60_000);
      assert.equal(await started.get({ timeout: 30_000 }), first.pid);
      await first.stop("SIGKILL");
      long.cancel();
      assert.equal((await failure(long)).name, "CancelledError");
      // The cancel waits for a worker that will never read it, until the recovery.
      const deadline = Date.now() + 20_000;
      while ((await cli("KEYS", `${keys}cancel:*`)) === "") {
        if (Date.now() > deadline) throw new Error("the cancel never reached the dead worker");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      while ((await cli("KEYS", `${keys}*`)).match(/:(cancel|running|job):/)) {
        if (Date.now() > deadline) throw new Error(`left behind: ${await cli("KEYS", "*")}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      second = startRedisWorker(server, "dead");
      assert.equal(await within(pool.submit(work.add, 1, 1), 30_000), 2);
      assert.equal(await started.size(), 0, "the cancelled task ran again");
    } finally {
      await first.stop();
      await second?.stop();
    }
  },
);

redisTest(
  "RedisPool: a submit sent again after a lost reply adds nothing, though the task has finished",
  async (server) => {
    await withWorkers(server, "resent", 1, async ([worker]) => {
      await using proxy = redisProxy(server.url);
      await using pool = openRedisPool({ url: proxy.url, name: "resent" });
      await using started = new RedisQueue<number>({ url: server.url, name: "started-once" });
      assert.equal(await within(pool.submit(work.add, 1, 1), 30_000), 2);
      // The submit's reply is lost; it is sent again only once the task has run and finished.
      proxy.loseReply("started-once", { holdMs: 1_500 });
      const task = pool.submit(work.startThenWait, server.url, "started-once", 0);
      assert.equal(await within(task, 30_000), worker.pid);
      assert.equal(await started.get({ timeout: 5_000 }), worker.pid);
      const again = await failure(started.get({ timeout: 3_000 }), 10_000);
      assert.equal(again.name, "TimeoutError", "the task ran a second time");
    });
  },
);
