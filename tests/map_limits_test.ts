// map, starmap, imap, imapUnordered: { timeout, signal, onProgress }.
import assert from "node:assert/strict";
import { ProcessPool, ThreadPool, TimeoutError, Value } from "../mod.ts";
import { failure, waitUntil, within, work } from "./_helpers.ts";

/** Ends the pool within the test's deadline: only if no task of the call runs on for a minute. */
async function endsPromptly(pool: ThreadPool | ProcessPool): Promise<void> {
  await within(pool.shutdown(), 10_000);
  assert.equal(pool.stats.runningTasks, 0);
}

Deno.test("map({ timeout }) rejects with TimeoutError and cancels its running and waiting chunks", async () => {
  const pool = new ThreadPool({ maxWorkers: 2 });
  const error = await failure(
    pool.map((ms: number) => new Promise((r) => setTimeout(r, ms)), [60_000, 60_000, 60_000, 1], {
      chunkSize: 1,
      timeout: 50,
    }),
  );
  assert.ok(error instanceof TimeoutError, `${error}`);
  assert.equal(error.message, "ThreadPool-1.map: not finished after 50 ms");
  assert.equal(pool.stats.cancelledTasks, 4);
  await endsPromptly(pool);
});

Deno.test("starmap({ signal }) rejects with the signal's reason and cancels its chunks, in a ProcessPool", async () => {
  const pool = new ProcessPool({ maxWorkers: 2 });
  const controller = new AbortController();
  const call = pool.starmap(work.sleep, [[60_000, "a"], [60_000, "b"], [1, "c"]], {
    chunkSize: 1,
    signal: controller.signal,
  });
  await waitUntil(() => pool.stats.runningTasks === 2);
  controller.abort(new Error("user stopped it"));
  const error = await failure(call);
  assert.equal(error.message, "user stopped it");
  await endsPromptly(pool);
});

Deno.test("a signal aborted before the call rejects at once and submits nothing", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const reason = new Error("too late");
  await assert.rejects(
    pool.map(work.add as never, [1, 2], { signal: AbortSignal.abort(reason) }),
    (e) => e === reason,
  );
  // The iterators check their options when called, as they do chunkSize.
  assert.throws(
    () => pool.imap(work.echo, [1, 2], { signal: AbortSignal.abort(reason) }),
    (e) => e === reason,
  );
  assert.equal(pool.stats.completedTasks + pool.stats.pendingTasks, 0);
});

for (const method of ["imap", "imapUnordered"] as const) {
  Deno.test(`${method}({ timeout }) throws TimeoutError in the loop and cancels what is in flight`, async () => {
    const pool = new ThreadPool({ maxWorkers: 2 });
    // Both workers up first, with the task module loaded: started by the call, a worker of a
    // loaded machine may take more than the 300 ms to run the first item's 1 ms.
    const arrived = new Value("int32", 0);
    await within(Promise.all([1, 2].map(() => pool.submit(work.arriveAndWait, arrived, 2))));
    const results: unknown[] = [];
    const error = await failure((async () => {
      const sleeps = [1, 60_000, 60_000, 60_000, 60_000];
      for await (const value of pool[method](work.sleep, sleeps, { timeout: 300 })) {
        results.push(value);
      }
    })());
    assert.ok(error instanceof TimeoutError, `${error}`);
    assert.match(error.message, new RegExp(`\\.${method}: not finished after 300 ms$`));
    assert.deepEqual(results, [1]);
    await endsPromptly(pool);
  });
}

Deno.test("onProgress counts finished items, with the total when the input's length is known", async () => {
  await using pool = new ThreadPool({ maxWorkers: 2 });
  const calls: [number, number | undefined][] = [];
  const onProgress = (done: number, total?: number) => calls.push([done, total]);
  assert.deepEqual(
    await within(pool.map(work.echo, [1, 2, 3, 4, 5], { chunkSize: 2, onProgress })),
    [1, 2, 3, 4, 5],
  );
  assert.deepEqual(calls.map(([, total]) => total), [5, 5, 5]);
  assert.deepEqual(calls.map(([done]) => done).at(-1), 5);
  assert.ok(calls.every(([done], i) => i === 0 || done > calls[i - 1][0]));

  calls.length = 0;
  function* generated() {
    yield* [1, 2, 3];
  }
  const seen: unknown[] = [];
  for await (const value of pool.imap(work.echo, generated(), { onProgress })) seen.push(value);
  assert.deepEqual(seen, [1, 2, 3]);
  assert.deepEqual(calls.map(([done, total]) => [done, total]), [[1, undefined], [2, undefined], [
    3,
    undefined,
  ]]);
});

Deno.test("a throwing onProgress is reported on stderr and the call still resolves", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const printed: unknown[][] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => printed.push(args);
  try {
    const result = await within(pool.map(work.echo, [1, 2], {
      chunkSize: 1,
      onProgress: () => {
        throw new Error("progress bar broke");
      },
    }));
    assert.deepEqual(result, [1, 2]);
  } finally {
    console.error = original;
  }
  assert.equal(printed.length, 2);
  assert.equal((printed[0][1] as Error).message, "progress bar broke");
});

Deno.test("bad map options name the option and the value; the pool goes on", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [
      { timeout: -1 },
      "RangeError",
      /'timeout' must be a number of milliseconds >= 0: current value is -1/,
    ],
    [{ signal: "stop" }, "TypeError", /'signal' must be an AbortSignal: current value is "stop"/],
    [{ onProgress: 5 }, "TypeError", /'onProgress' must be a function: current value is 5/],
    [{ onprogress: () => {} }, "TypeError", /unknown option 'onprogress'/],
  ];
  for (const [options, name, message] of cases) {
    await assert.rejects(pool.map(work.echo, [1], options), { name, message });
    assert.throws(() => pool.imap(work.echo, [1], options), { name, message });
  }
  assert.deepEqual(await within(pool.map(work.echo, [1, 2])), [1, 2]);
});

Deno.test("an imap iterator never read leaves no timer and no abort listener behind", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  const controller = new AbortController();
  let listeners = 0;
  const add = controller.signal.addEventListener.bind(controller.signal);
  controller.signal.addEventListener = ((...args: Parameters<typeof add>) => {
    listeners++;
    return add(...args);
  }) as typeof add;
  const remove = controller.signal.removeEventListener.bind(controller.signal);
  controller.signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
    listeners--;
    return remove(...args);
  }) as typeof remove;
  const results = pool.imap((x: number) => x, [1, 2, 3], {
    timeout: 60_000,
    signal: controller.signal,
  });
  // Dropped unread (or ended with return() before the first next()).
  await results.return?.(undefined);
  assert.equal(listeners, 0, "the abort listener is still attached");
  // (Deno 2.9.6's test sanitizer does not report a pending timer: the listener count stands for both.)
});
