// RedisQueue against a real redis-server (see _redis.ts): order, encodings, bounds, close,
// waits, several processes, and connections dropped in the middle.
import assert from "node:assert/strict";
import { QueueClosedError, TimeoutError } from "../mod.ts";
import { RedisQueue } from "../redis/mod.ts";
import { getBatch } from "../redis/queue.ts";
import { redisCli, redisProxy, redisTest } from "./_redis.ts";
import { failure, runProgram, within } from "./_helpers.ts";

redisTest("RedisQueue: first in, first out, with Queue's encodings", async ({ url }) => {
  await using queue = new RedisQueue<unknown>({ url, name: "order" });
  const items = [
    1,
    -0,
    NaN,
    2.5,
    "text",
    "x".repeat(10_000),
    "\ud800 lone",
    true,
    false,
    null,
    undefined,
    new Map([[1, { a: [1n] }]]),
    new Date(5),
  ];
  for (const item of items) await queue.put(item);
  assert.equal(await queue.size(), items.length);
  for (const item of items) assert.deepEqual(await queue.get({ timeout: 1_000 }), item);
  assert.equal(await queue.tryGet(), undefined);
  await assert.rejects(queue.put(() => 1), { name: "SerializationError" });
});

redisTest(
  "RedisQueue: maxSize bounds this handle's puts; a get makes room for a waiting put",
  async ({ url }) => {
    await using producer = new RedisQueue<number>({ url, name: "bounded", maxSize: 2 });
    await using consumer = new RedisQueue<number>({ url, name: "bounded" });
    assert.equal(await producer.tryPut(1), true);
    assert.equal(await producer.tryPut(2), true);
    assert.equal(await producer.tryPut(3), false);
    await assert.rejects(producer.put(3, { timeout: 50 }), TimeoutError);
    const waiting = producer.put(3, { timeout: 10_000 });
    assert.equal(await consumer.get(), 1);
    await within(waiting);
    assert.deepEqual([await consumer.get(), await consumer.get()], [2, 3]);
  },
);

redisTest(
  "RedisQueue: close() closes it for every handle; gets drain it, then fail",
  async ({ url }) => {
    await using a = new RedisQueue<string>({ url, name: "closing" });
    await using b = new RedisQueue<string>({ url, name: "closing" });
    const waiting = b.get({ timeout: 10_000 }); // ends when the queue closes
    await a.put("last");
    assert.equal(await within(waiting), "last");
    await a.put("left");
    const blocked = a.get({ timeout: 10_000 }).then(() => a.get({ timeout: 10_000 }));
    await b.close();
    await assert.rejects(a.put("more"), QueueClosedError);
    assert.equal((await failure(blocked)).name, "QueueClosedError");
    const seen: string[] = [];
    for await (const item of b) seen.push(item);
    assert.deepEqual(seen, []);
    await assert.rejects(b.tryGet(), QueueClosedError);
  },
);

redisTest(
  "RedisQueue: a get's timeout and signal; an item put after an abort is not lost",
  async ({ url }) => {
    await using queue = new RedisQueue<number>({ url, name: "waits" });
    const error = await failure(queue.get({ timeout: 50 }));
    assert.ok(error instanceof TimeoutError);
    const controller = new AbortController();
    const aborted = queue.get({ signal: controller.signal });
    setTimeout(() => controller.abort(new Error("stop")), 30);
    assert.equal((await failure(aborted)).message, "stop");
    await queue.put(7);
    assert.equal(await queue.get({ timeout: 5_000 }), 7);
    assert.equal(await queue.size(), 0);
  },
);

redisTest(
  "RedisQueue: bad options and an unreachable server name what is wrong",
  async ({ url }) => {
    assert.throws(() => new RedisQueue({ url, name: "" }), {
      name: "TypeError",
      message: /'name' must be a non-empty string: current value is ""/,
    });
    assert.throws(() => new RedisQueue({ url, name: "q", maxSize: 0 }), {
      name: "RangeError",
      message: /'maxSize'/,
    });
    assert.throws(() => new RedisQueue({ url, name: "q", maxsize: 1 } as never), {
      name: "TypeError",
      message: /unknown option 'maxsize'/,
    });
    const nowhere = "redis://127.0.0.1:1";
    await using lost = new RedisQueue<number>({ url: nowhere, name: "q" });
    await assert.rejects(lost.put(1), {
      message: /RedisQueue "q": cannot reach Redis at redis:\/\/127\.0\.0\.1:1/,
    });
  },
);

redisTest(
  "RedisQueue: a producer and two consumers in three processes: every item exactly once",
  async ({ url }) => {
    const count = 2_000;
    const consumer = `
    import { RedisQueue } from "@parallel/core/redis";
    await using queue = new RedisQueue<number>({ url: "${url}", name: "shared" });
    const got: number[] = [];
    for await (const n of queue) got.push(n);
    console.log(JSON.stringify(got));`;
    const producer = `
    import { RedisQueue } from "@parallel/core/redis";
    await using queue = new RedisQueue<number>({ url: "${url}", name: "shared" });
    for (let i = 0; i < ${count}; i++) await queue.put(i);
    await queue.close();`;
    const runs = await Promise.all([
      runProgram(consumer),
      runProgram(consumer),
      runProgram(producer),
    ]);
    for (const run of runs) assert.equal(run.code, 0, run.stderr);
    const got = [...JSON.parse(runs[0].stdout), ...JSON.parse(runs[1].stdout)] as number[];
    assert.equal(got.length, count);
    assert.deepEqual([...got].sort((a, b) => a - b), Array.from({ length: count }, (_, i) => i));
    for (const run of runs.slice(0, 2)) {
      const mine = JSON.parse(run.stdout) as number[];
      assert.deepEqual(mine, [...mine].sort((a, b) => a - b), "a consumer got items out of order");
    }
  },
);

redisTest(
  "RedisQueue: connections dropped in the middle lose no item and add none",
  async ({ url }) => {
    const count = 3_000;
    await using producer = new RedisQueue<number>({ url, name: "dropped" });
    await using consumer = new RedisQueue<number>({ url, name: "dropped" });
    const got: number[] = [];
    const consuming = (async () => {
      for await (const n of consumer) got.push(n);
    })();
    const producing = (async () => {
      for (let i = 0; i < count; i++) await producer.put(i);
    })();
    // Drop every client connection a few times while items flow.
    const killer = new Deno.Command("redis-cli", {
      args: ["-u", url, "CLIENT", "KILL", "TYPE", "normal"],
      stdout: "null",
      stderr: "null",
    });
    for (let k = 0; k < 5; k++) {
      await new Promise((resolve) => setTimeout(resolve, 30));
      await killer.output();
    }
    await within(producing, 30_000);
    await producer.close();
    await within(consuming, 30_000);
    assert.equal(got.length, count, `got ${got.length} items`);
    assert.deepEqual(got, Array.from({ length: count }, (_, i) => i));
  },
);

/** Asks `ask` until it returns true, for at most 10 s. */
async function eventually(what: string, ask: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!await ask()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

redisTest(
  "RedisQueue: an item a consumer took and never confirmed (it froze or died) goes to another, once",
  async ({ url }) => {
    const keys = "parallel:queue:{frozen}:";
    // A consumer in a process of its own, waiting for an item.
    const dir = await Deno.makeTempDir();
    await Deno.writeTextFile(
      `${dir}/consumer.ts`,
      `import { RedisQueue } from "${new URL("../redis/mod.ts", import.meta.url).href}";
      await using queue = new RedisQueue<number>({ url: "${url}", name: "frozen" });
      const got: number[] = [];
      for await (const n of queue) got.push(n);
      console.log(JSON.stringify(got));`,
    );
    const frozen = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-config", `${dir}/consumer.ts`],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    try {
      await eventually(
        "the consumer holds its pending list",
        async () => (await redisCli(url, "ZCARD", `${keys}holds`)).trim() === "1",
      );
      const [pending] = (await redisCli(url, "ZRANGE", `${keys}holds`, "0", "-1")).trim()
        .split("\n");
      // Frozen in its blocking wait: Redis moves the item into its pending list all the same.
      Deno.kill(frozen.pid, "SIGSTOP");
      await using other = new RedisQueue<number>({ url, name: "frozen" });
      await other.put(1);
      await eventually(
        "the item is in the frozen consumer's pending list",
        async () => (await redisCli(url, "LLEN", pending)).trim() === "1",
      );
      // Its hold runs out (backdated here, instead of waiting out its grace).
      await redisCli(url, "ZADD", `${keys}holds`, "0", pending);
      assert.equal(await other.get({ timeout: 5_000 }), 1);
      await other.put(2);
      assert.equal(await other.get({ timeout: 5_000 }), 2);
      // Back to life, it does not get the item a second time.
      Deno.kill(frozen.pid, "SIGCONT");
      await other.close();
      const output = await within(frozen.output(), 10_000);
      assert.deepEqual(JSON.parse(new TextDecoder().decode(output.stdout)), []);
    } finally {
      try {
        frozen.kill("SIGKILL");
      } catch {
        // It ended.
      }
      await frozen.status;
      await Deno.remove(dir, { recursive: true });
    }
  },
);

redisTest(
  "RedisQueue: gets aborted at any moment lose no item and hand none out twice",
  async ({ url }) => {
    const count = 400;
    await using producer = new RedisQueue<number>({ url, name: "aborted" });
    await using consumer = new RedisQueue<number>({ url, name: "aborted" });
    for (let i = 0; i < count; i++) await producer.put(i);
    const got: number[] = [];
    for (let attempt = 0; got.length < count && attempt < 20 * count; attempt++) {
      const controller = new AbortController();
      // Aborted at once, after some microtasks, or after a turn: before, during or after a
      // take or its confirm.
      const when = attempt % 3;
      if (when === 0) controller.abort();
      else if (when === 1) queueMicrotask(() => controller.abort());
      else setTimeout(() => controller.abort(), attempt % 2);
      try {
        got.push(await consumer.get({ timeout: 5_000, signal: controller.signal }));
      } catch (error) {
        assert.equal((error as Error).name, "AbortError");
      }
    }
    for (let left = await consumer.tryGet(); left !== undefined; left = await consumer.tryGet()) {
      got.push(left.value);
    }
    assert.deepEqual([...got].sort((a, b) => a - b), Array.from({ length: count }, (_, i) => i));
  },
);

redisTest(
  "RedisQueue: a get whose pending list holds more than it asked for (a wait sent again) loses none",
  async ({ url }) => {
    const keys = "parallel:queue:{again}:";
    await using producer = new RedisQueue<string>({ url, name: "again" });
    await using consumer = new RedisQueue<string>({ url, name: "again" });
    await using stash = new RedisQueue<string>({ url, name: "stash" });
    const getting = consumer.get({ timeout: 10_000 });
    await eventually(
      "the get holds its pending list",
      async () => (await redisCli(url, "ZCARD", `${keys}holds`)).trim() === "1",
    );
    const pending = (await redisCli(url, "ZRANGE", `${keys}holds`, "0", "-1")).trim();
    // An item a first wait moved there before its reply was lost ...
    await stash.put("first");
    await redisCli(url, "LMOVE", "parallel:queue:{stash}:items", pending, "LEFT", "RIGHT");
    // ... and the one the wait sent again moves now.
    await producer.put("second");
    assert.equal(await within(getting, 10_000), "first");
    assert.equal(await consumer.get({ timeout: 5_000 }), "second");
    assert.equal(await consumer.tryGet(), undefined);
  },
);

redisTest(
  "RedisQueue: a confirm sent again after a lost reply keeps its item, though an old give-back left a mark",
  async ({ url }) => {
    const keys = "parallel:queue:{marked}:";
    await using proxy = redisProxy(url);
    await using consumer = new RedisQueue<string>({ url: proxy.url, name: "marked" });
    await using other = new RedisQueue<string>({ url, name: "marked" });
    // A first get names the consumer's pending list (its connection keeps it for the next).
    const first = consumer.get({ timeout: 10_000 });
    await eventually(
      "the get holds its pending list",
      async () => (await redisCli(url, "ZCARD", `${keys}holds`)) === "1",
    );
    const pending = await redisCli(url, "ZRANGE", `${keys}holds`, "0", "-1");
    await other.put("first");
    assert.equal(await within(first), "first");
    // A give-back mark left on that list for a confirm that never came (a get of this consumer
    // whose items went back to the queue while it could not confirm them).
    await redisCli(url, "SET", `${pending}:given-back`, "1");
    // A later get takes an item; the reply to its confirm is lost, so the confirm goes again:
    // the item is still its.
    await other.put("second");
    proxy.loseReply("given-back");
    assert.equal(await consumer.get({ timeout: 5_000 }), "second");
    assert.equal(await other.tryGet(), undefined);
  },
);

redisTest(
  "RedisQueue: disconnect() ends when the server goes away while a confirm runs in the background",
  async ({ url }) => {
    await using proxy = redisProxy(url);
    const queue = new RedisQueue<string>({ url: proxy.url, name: "gone" });
    await using producer = new RedisQueue<string>({ url, name: "gone" });
    await producer.put("item");
    proxy.die("given-back\r\n"); // the confirm's key, not the text of a script
    assert.deepEqual(await within(getBatch(queue, 10, true)), ["item"]);
    await within(queue.disconnect(), 20_000);
  },
);
redisTest(
  "RedisQueue: a hold in Redis that names no pending list (anyone can write one) wedges no get",
  async ({ url }) => {
    const keys = "parallel:queue:{holds}:";
    await using queue = new RedisQueue<number>({ url, name: "holds" });
    for (let i = 1; i <= 2; i++) await queue.put(i);
    // A lapsed hold on a key that is not a list ...
    await redisCli(url, "SET", `${keys}text`, "not a list");
    await redisCli(url, "ZADD", `${keys}holds`, "0", `${keys}text`);
    assert.equal(await queue.get({ timeout: 5_000 }), 1);
    // ... and one on the queue's own items.
    await redisCli(url, "ZADD", `${keys}holds`, "0", `${keys}items`);
    assert.equal(await queue.get({ timeout: 5_000 }), 2);
    assert.equal(await queue.tryGet(), undefined);
  },
);

redisTest(
  "RedisQueue: an item that a get aborted during its wait moves anyway goes back at once",
  async ({ url }) => {
    await using waiting = new RedisQueue<string>({ url, name: "aborted-wait" });
    await using other = new RedisQueue<string>({ url, name: "aborted-wait" });
    const controller = new AbortController();
    const getting = waiting.get({ timeout: 60_000, signal: controller.signal }).catch((e) => e);
    await eventually(
      "the get waits",
      async () =>
        (await redisCli(url, "ZCARD", "parallel:queue:{aborted-wait}:holds")).trim() === "1",
    );
    controller.abort();
    assert.equal((await within(getting, 5_000)).name, "AbortError");
    // The wait still blocked in Redis takes this one into its pending list.
    await other.put("moved");
    assert.equal(await other.get({ timeout: 3_000 }), "moved");
  },
);
