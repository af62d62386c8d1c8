// JoinableQueue: taskDone, join and joinSync, with the main thread and threads.
import assert from "node:assert/strict";
import { remote, type RemoteSpec } from "../internal/codec.ts";
import { tasks, Thread } from "../mod.ts";
import { JoinableQueue, Queue, TimeoutError } from "../queue/mod.ts";
import { failure, within } from "./_helpers.ts";

const work = tasks<typeof import("./_queue_tasks.ts")>(
  new URL("./_queue_tasks.ts", import.meta.url),
);

Deno.test("JoinableQueue: join waits until two worker threads have marked every item done", async () => {
  const queue = new JoinableQueue<number>({ maxSize: 10 });
  const workers = [1, 2].map(() =>
    new Thread({ target: work.workAndMarkDone, args: [queue, 0] }).start()
  );
  for (let i = 0; i < 2_000; i++) await queue.put(i, { timeout: 10_000 });
  await within(queue.join({ timeout: 10_000 }));
  assert.equal(queue.unfinished, 0);
  assert.equal(queue.size, 0);
  queue.close();
  const done = await within(Promise.all(workers.map((thread) => thread.join())));
  assert.equal(done[0] + done[1], 2_000);
});

Deno.test("JoinableQueue: join waits for taskDone, not only for the gets", async () => {
  const queue = new JoinableQueue<string>();
  assert.ok(queue instanceof Queue);
  await within(queue.join()); // nothing put: resolves at once
  await queue.put("job");
  await queue.get();
  assert.equal(queue.unfinished, 1);
  const error = await failure(queue.join({ timeout: 30 }));
  assert.ok(error instanceof TimeoutError);
  assert.match(error.message, /JoinableQueue\.join\(\) timed out after 30 ms/);
  setTimeout(() => queue.taskDone(), 20);
  await within(queue.join());
  assert.equal(queue.unfinished, 0);
});

Deno.test("JoinableQueue: joinSync in a thread returns once the main thread marks the items done", async () => {
  const queue = new JoinableQueue<number>();
  for (let i = 0; i < 3; i++) await queue.put(i);
  const joiner = new Thread({ target: work.joinInThread, args: [queue, 10_000] }).start();
  for (let i = 0; i < 3; i++) {
    await queue.get();
    await new Promise((resolve) => setTimeout(resolve, 10));
    queue.taskDone();
  }
  assert.equal(await within(joiner.join()), "joined");
  await queue.put(9);
  const timedOut = new Thread({ target: work.joinInThread, args: [queue, 30] }).start();
  assert.equal(await within(timedOut.join()), "TimeoutError");
});

Deno.test("JoinableQueue: taskDone more times than items put throws RangeError", async () => {
  const queue = new JoinableQueue<number>();
  assert.throws(() => queue.taskDone(), RangeError);
  await queue.put(1);
  queue.taskDone();
  assert.throws(
    () => queue.taskDone(),
    (error: Error) =>
      error instanceof RangeError && /more times than items were put/.test(error.message),
  );
  assert.equal(queue.unfinished, 0);
});

Deno.test("JoinableQueue: an aborted signal rejects join with its reason", async () => {
  const queue = new JoinableQueue<number>();
  await queue.put(1);
  const controller = new AbortController();
  const join = queue.join({ signal: controller.signal });
  setTimeout(() => controller.abort(new Error("enough")), 20);
  assert.equal((await failure(join)).message, "enough");
  assert.equal(queue.unfinished, 1);
});

Deno.test("JoinableQueue: a child process must use join(), and taskDone is sent one way", () => {
  const spec = (new JoinableQueue() as unknown as { [remote]: RemoteSpec })[remote];
  assert.equal(spec.immediate?.joinSync, "await queue.join(options)");
  assert.deepEqual(spec.oneWay, ["close", "taskDone"]);
});
