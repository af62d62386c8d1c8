// Bugs found by trying the pools as a new user would (issue 9), one test each.
import assert from "node:assert/strict";
import { asCompleted, Process, ProcessPool, Thread, ThreadPool, Value, wait } from "../mod.ts";
import { alive, failure, flagSet, waitUntil, within, work } from "./_helpers.ts";

/** The error `submit` throws, or the task fails with. */
function refusal(submit: () => PromiseLike<unknown>): Promise<any> {
  try {
    return failure(submit());
  } catch (error) {
    return Promise.resolve(error);
  }
}

const pools = [
  ["ThreadPool", () => new ThreadPool({ maxWorkers: 1 })],
  ["ProcessPool", () => new ProcessPool({ maxWorkers: 1 })],
] as const;

for (const [label, create] of pools) {
  Deno.test(`${label}: an argument that cannot be sent does not poison its function`, async () => {
    await using pool = create();
    const kind = (x: unknown) => typeof x;
    const error = await failure(pool.submit(kind, Symbol("bad")));
    assert.equal(error.name, "SerializationError");
    assert.equal(await within(pool.submit(kind, 5)), "number");
    const refError = await failure(pool.submit(work.echo, Symbol("bad")));
    assert.equal(refError.name, "SerializationError");
    assert.equal(await within(pool.submit(work.echo, 7)), 7);
  });

  Deno.test(`${label}: a captured variable named like a worker global is a ReferenceError`, async () => {
    await using pool = create();
    const name = "Alice";
    const error = await failure(pool.submit(() => `hi ${name}`));
    assert.equal(error.name, "ReferenceError");
    assert.match(error.message, /uses "name", which does not exist in the worker/);
    // Declared names and property reads are the task's own.
    assert.equal(await within(pool.submit((name: string) => `hi ${name}`, "Bob")), "hi Bob");
    assert.equal(await within(pool.submit((o: { name: string }) => o.name, { name: "C" })), "C");
  });

  Deno.test(`${label}: arguments that would arrive as {} fail, naming the argument`, async () => {
    await using pool = create();
    const url = await refusal(() =>
      pool.submit((u: URL) => u.href, new URL("https://example.com/"))
    );
    assert.equal(url.name, "SerializationError");
    assert.match(url.message, /argument 0 of task \d+ .*instance of URL/);
    let deep: unknown = 0;
    for (let i = 0; i < 5_000; i++) deep = [deep];
    const nested = await refusal(() => pool.submit((_: number, x: unknown) => x, 1, deep));
    assert.equal(nested.name, "SerializationError");
    assert.match(nested.message, /argument 1 of task .*nested more than 1000 levels/);
    const result = await failure(pool.submit(() => new URL("https://example.com/")));
    assert.equal(result.name, "SerializationError");
    assert.match(result.message, /the result of a task.*URL/);
    assert.equal(await within(pool.submit((x: number) => x + 1, 1)), 2);
  });
}

Deno.test("a broken pool starts no more workers", async () => {
  const started = new Value("int32", 0);
  const creates = [
    () =>
      new ThreadPool({
        maxWorkers: 2,
        minWorkers: 2,
        initializer: (count: Value<"int32">) => {
          count.addSync(1);
          throw new Error("x");
        },
        initArgs: [started],
      }),
    () =>
      new ProcessPool({
        maxWorkers: 2,
        minWorkers: 2,
        initializer: work.countThenFail,
        initArgs: [started],
      }),
  ];
  for (const create of creates) {
    const before = new Set(childProcesses());
    const pool = create();
    const error = await failure(pool.submit((x: number) => x, 1));
    assert.equal(error.name, "BrokenPoolError");
    await new Promise((resolve) => setTimeout(resolve, 300));
    // A child process still starting when the pool broke runs its initializer before it ends
    // (on a loaded machine, after the 300 ms): the count is final once the pool's children end.
    await waitUntil(() => childProcesses().every((pid) => before.has(pid)));
    const after = started.loadSync();
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(started.loadSync(), after);
    assert.ok(after <= 4, `${after} workers started`);
    assert.equal(pool.stats.workers, 0);
    await within(pool.shutdown());
    started.storeSync(0);
  }
});

/** The pids of this process's running children. */
function childProcesses(): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      // pid (comm) state ppid …: the name may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === Deno.pid && alive(Number(entry.name))) pids.push(Number(entry.name));
    } catch {
      // It ended meanwhile.
    }
  }
  return pids;
}

Deno.test("an invalid target is refused by the constructor, and nothing runs", () => {
  assert.throws(
    () => new Thread({ target: 5 as never }),
    (error: Error) => error instanceof TypeError && /'target'/.test(error.message),
  );
  assert.throws(
    () => new Process({ target: "fib" as never }),
    (error: Error) => error instanceof TypeError && /'target'.*"fib"/.test(error.message),
  );
});

Deno.test("map rejects with the error of the first failing item in input order", async () => {
  await using pool = new ThreadPool({ maxWorkers: 2 });
  const fail = async (item: string) => {
    if (item === "a") await new Promise((resolve) => setTimeout(resolve, 200));
    throw new Error(`failed on ${item}`);
  };
  const error = await failure(pool.map(fail, ["a", "b"], { chunkSize: 1 }));
  assert.equal(error.message, "failed on a");
});

Deno.test("misspelt options of apply, map, starmap and the imaps are refused", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const id = (x: number) => x;
  const misspelt = { timout: 5 } as never;
  assert.throws(() => pool.apply(id, [1], misspelt), /unknown option 'timout'.*signal, timeout/);
  await assert.rejects(pool.map(id, [1], misspelt), /unknown option 'timout'.*chunkSize/);
  await assert.rejects(pool.starmap(id, [[1]], misspelt), /unknown option 'timout'/);
  assert.throws(() => pool.imap(id, [1], misspelt), /unknown option 'timout'/);
  assert.throws(() => pool.imapUnordered(id, [1], misspelt), /unknown option 'timout'/);
  assert.equal(await within(pool.apply(id, [3], { timeout: 5_000 })), 3);
});

Deno.test("wait() and asCompleted() given plain promises say they take tasks", () => {
  const promise = Promise.resolve(1);
  assert.throws(() => wait([promise as never]), /item 0 is an instance of Promise, not a Task/);
  assert.throws(() => asCompleted([promise as never]), /asCompleted: item 0 .* not a Task/);
});

Deno.test("after terminate() the error says terminate() was called", async () => {
  const flags = new Int32Array(new SharedArrayBuffer(4));
  const thread = new Thread({ target: work.spinUntilCancelled, args: [flags, 5_000] }).start();
  await new Promise((resolve) => setTimeout(resolve, 50));
  await within(thread.terminate());
  const error = await failure(thread.join());
  assert.equal(error.name, "CancelledError");
  assert.match(error.message, /terminate\(\) was called/);
});

Deno.test("a thread that exits keeps the results it had finished; the rest run elsewhere", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  await warmUp(pool);
  const tasks = Array.from({ length: 400 }, (_, i) => pool.submit(work.exitAt, i, 200));
  const outcomes = await within(Promise.allSettled(tasks));
  const failed = outcomes.flatMap((outcome, i) => outcome.status === "rejected" ? [i] : []);
  assert.deepEqual(failed, [200]);
  assert.equal((outcomes[200] as PromiseRejectedResult).reason.name, "WorkerCrashedError");
  outcomes.forEach((outcome, i) => {
    if (i !== 200) assert.equal((outcome as PromiseFulfilledResult<number>).value, i);
  });
});

Deno.test("tasks finished before a task that times out keep their results", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  await warmUp(pool);
  await within(pool.submit(work.busyFor, 0)); // loaded: its next job does not wait for an import
  const before = Array.from({ length: 200 }, (_, i) => pool.submit((x: number) => x, i));
  // A synchronous loop that never polls: its worker is abandoned, stuck.
  const stuck = pool.apply(work.busyFor, [1_000], { timeout: 50 });
  const after = Array.from({ length: 200 }, (_, i) => pool.submit((x: number) => x, i));
  assert.deepEqual(await within(Promise.all(before)), before.map((_, i) => i));
  assert.deepEqual(await within(Promise.all(after)), after.map((_, i) => i));
  assert.equal((await failure(stuck)).name, "TimeoutError");
});

Deno.test("stats count a task a worker holds but has not started as pending", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  await warmUp(pool);
  const flags = new Int32Array(new SharedArrayBuffer(8));
  const spinner = pool.submit(work.spinUntilCancelled, flags, 5_000);
  const quick = Array.from({ length: 50 }, (_, i) => pool.submit((x: number) => x, i));
  await flagSet(flags, 0);
  const { runningTasks, pendingTasks } = pool.stats;
  assert.equal(runningTasks, 1);
  assert.equal(pendingTasks, 50);
  spinner.cancel();
  await within(Promise.all(quick));
});

/** Runs 2,000 tiny tasks one by one, so that the pool sends a worker large batches. */
async function warmUp(pool: ThreadPool): Promise<void> {
  await within(
    Promise.all(Array.from({ length: 2_000 }, (_, i) => pool.submit((x: number) => x, i))),
  );
}

// Found by a review of the fixes above.

Deno.test("objects the platform copies or moves whole still cross to a thread", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  assert.equal(
    await within(pool.submit((m: WebAssembly.Memory) => m.buffer.byteLength, memory)),
    65536,
  );
  const module = new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
  assert.equal(
    await within(pool.submit((m: WebAssembly.Module) => m instanceof WebAssembly.Module, module)),
    true,
  );
  const key = await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, true, ["sign"]);
  assert.equal(await within(pool.submit((k: CryptoKey) => k.algorithm.name, key)), "HMAC");
  const stream = new ReadableStream({
    start(controller) {
      controller.enqueue(1);
      controller.close();
    },
  });
  const read = (s: ReadableStream<number>) => s.getReader().read().then((r) => r.value);
  assert.equal(await within(pool.apply(read, [stream], { transfer: [stream] })), 1);
});

Deno.test("a timeout longer than a timer can wait means no timeout", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(() => resolve("done"), ms));
  assert.equal(await within(pool.apply(sleep, [50], { timeout: 3e9 })), "done");
});

Deno.test("wait() names the item as given; a timeout of another type is a TypeError", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const task = pool.submit((x: number) => x, 1);
  assert.throws(() => wait([task, task, task, 5 as never]), /item 3 is number, not a Task/);
  assert.throws(
    () => pool.apply((x: number) => x, [1], { timeout: "5" as never }),
    (error: Error) => error instanceof TypeError && /'timeout'.*"5"/.test(error.message),
  );
  await within(task);
});

Deno.test("Deno.exit(0) in a Thread or Process target is a normal end, as sys.exit(0) in Python", async () => {
  const process = new Process({ target: work.exitSelf, args: [0] }).start();
  assert.equal(await within(process.join()), undefined);
  assert.equal(process.exitCode, 0);
  const thread = new Thread({ target: work.exitSelf, args: [0] }).start();
  assert.equal(await within(thread.join()), undefined);
  const failing = new Process({ target: work.exitSelf, args: [3] }).start();
  assert.equal((await failure(failing.join())).name, "WorkerCrashedError");
});
