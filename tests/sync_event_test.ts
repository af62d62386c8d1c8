import assert from "node:assert/strict";
import { tasks, Thread } from "../mod.ts";
import { Event, WaitGroup } from "../sync/mod.ts";
import { runProgram, within } from "./_helpers.ts";

const work = tasks<typeof import("./_sync_tasks.ts")>(
  new URL("./_sync_tasks.ts", import.meta.url),
);

Deno.test("Event: a thread's set() wakes the main thread and other threads", async () => {
  const event = new Event();
  const waiters = [1, 2].map(() =>
    new Thread({ target: work.eventWait, args: [event, 10_000] }).start()
  );
  const setter = new Thread({ target: work.setLater, args: [event, 50] }).start();
  assert.equal(await within(event.wait({ timeout: 10_000 })), true);
  assert.deepEqual(await within(Promise.all(waiters.map((thread) => thread.join()))), [true, true]);
  await within(setter.join());
  assert.equal(event.isSet, true);
  assert.equal(event.waitSync({ timeout: 0 }), true);
});

Deno.test("Event: wait resolves false on a timeout; a set-then-clear still releases waiters", async () => {
  const event = new Event();
  const started = performance.now();
  assert.equal(await event.wait({ timeout: 40 }), false);
  assert.ok(performance.now() - started >= 35);
  assert.equal(event.waitSync({ timeout: 5 }), false);
  const waiting = event.wait({ timeout: 5_000 });
  await new Promise((resolve) => setTimeout(resolve, 5));
  event.set();
  event.clear();
  assert.equal(await within(waiting), true);
  assert.equal(event.isSet, false);
  const inThread = new Thread({ target: work.eventWait, args: [event, 30] }).start();
  assert.equal(await within(inThread.join()), false);
});

Deno.test("Event: an aborted wait rejects with the signal's reason", async () => {
  const event = new Event();
  const controller = new AbortController();
  const waiting = event.wait({ signal: controller.signal });
  setTimeout(() => controller.abort(), 5);
  await assert.rejects(waiting, { name: "AbortError" });
  const reason = new Error("cancelled");
  assert.throws(() => event.waitSync({ signal: AbortSignal.abort(reason) }), (e) => e === reason);
  await assert.rejects(event.wait({ timeout: -5 }), {
    name: "RangeError",
    message:
      "Cannot wait on Event: 'timeout' must be a number of milliseconds >= 0: current value is -5",
  });
  event.set();
  assert.equal(await event.wait(), true);
});

Deno.test("Event: a program whose only work is a timed wait runs to its end and prints false", async () => {
  const sync = new URL("../sync/mod.ts", import.meta.url).href;
  const { code, stdout, stderr } = await runProgram(
    `import { Event } from "${sync}";\n` +
      `const e = new Event();\n` +
      `console.log(await e.wait({ timeout: 300 }));\n`,
  );
  assert.equal(stderr.includes("never resolved"), false, stderr);
  assert.equal(code, 0, stderr);
  assert.equal(stdout.trim(), "false");
});

Deno.test("WaitGroup: the main thread waits for three threads' done()", async () => {
  const group = new WaitGroup();
  group.add(3);
  const threads = [10, 30, 50].map((ms) =>
    new Thread({ target: work.workThenDone, args: [group, ms] }).start()
  );
  assert.equal(await within(group.wait({ timeout: 10_000 })), true);
  assert.equal(group.count, 0);
  await within(Promise.all(threads.map((thread) => thread.join())));
});

Deno.test("WaitGroup: a thread waits for the main thread; timeouts resolve false", async () => {
  const group = new WaitGroup();
  group.add(2);
  const waiter = new Thread({ target: work.groupWait, args: [group, 10_000] }).start();
  assert.equal(await group.wait({ timeout: 20 }), false);
  group.done();
  assert.equal(group.waitSync({ timeout: 0 }), false);
  group.done();
  assert.equal(await within(waiter.join()), true);
  const late = new Thread({ target: work.groupWait, args: [new WaitGroup(), 0] }).start();
  assert.equal(await within(late.join()), true);
});

Deno.test("WaitGroup: a negative counter throws and leaves the counter unchanged", async () => {
  const group = new WaitGroup();
  assert.throws(() => group.done(), {
    name: "RangeError",
    message: "Cannot call done() on WaitGroup: its counter would go from 0 to -1 " +
      "(more done() than add())",
  });
  group.add(2);
  assert.throws(
    () => group.add(-3),
    /Cannot add -3 to WaitGroup: its counter would go from 2 to -1/,
  );
  assert.throws(() => group.add(0.5), /'delta' must be a whole number: current value is 0\.5/);
  assert.equal(group.count, 2);
  const controller = new AbortController();
  const waiting = group.wait({ signal: controller.signal });
  controller.abort();
  await assert.rejects(waiting, { name: "AbortError" });
  group.add(-2);
  assert.equal(await group.wait(), true);
});
