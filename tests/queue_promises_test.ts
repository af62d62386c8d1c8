// Promises of the queue's ring (queue/_ring.ts) at its edges: wrapping around the end of the
// ring, and running out of its 64 MiB. Tests assert what comes out and how waits end.
import assert from "node:assert/strict";
import { tasks, Thread } from "../mod.ts";
import { Queue, QueueClosedError } from "../queue/mod.ts";
import { queueRing } from "../queue/queue.ts";
import { INITIAL_BYTES, MAX_BYTES } from "../queue/_ring.ts";
import { failure, flagSet, sharedFlags, within } from "./_helpers.ts";

const work = tasks<typeof import("./_queue_tasks.ts")>(
  new URL("./_queue_tasks.ts", import.meta.url),
);

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A string whose frame in the ring takes exactly 1,024 bytes (a 4-byte word, 1,020 of UTF-8). */
function frame(tag: string, i: number): string {
  return `${tag}-${i}:`.padEnd(1_020, "x");
}

/** Takes items with tryGet until the queue is empty. */
function drain<T>(queue: Queue<T>): T[] {
  const items: T[] = [];
  for (let got = queue.tryGet(); got !== undefined; got = queue.tryGet()) items.push(got.value);
  return items;
}

Deno.test("Queue: a put that wraps around after the ring was emptied returns every item once, in order", async () => {
  const queue = new Queue<string>();
  // Fill most of the ring with frames, and take them all: the ring is empty and starts again
  // at byte 0, but the bytes of those frames are still there, up to byte 61,440.
  const stale = 60;
  assert.ok(stale * 1_024 < INITIAL_BYTES);
  for (let i = 0; i < stale; i++) assert.ok(queue.tryPut(frame("stale", i)));
  assert.deepEqual(drain(queue), Array.from({ length: stale }, (_, i) => frame("stale", i)));
  // 50 frames from byte 0 (up to 51,200), of which the first 30 are taken (the head is at
  // 30,720): 14,336 bytes are left at the end, 30,720 free at the start.
  for (let i = 0; i < 50; i++) await queue.put(frame("item", i));
  for (let i = 0; i < 30; i++) assert.equal(await queue.get(), frame("item", i));
  // An item of 16,004 bytes does not fit at the end but fits at the start: it wraps around,
  // and a reader that reaches byte 51,200 must go on at 0, not read the stale frame there.
  const wrapped = "wrapped:".padEnd(16_000, "y");
  assert.ok(INITIAL_BYTES - 50 * 1_024 < 16_004 && 16_004 <= 30 * 1_024);
  await queue.put(wrapped);
  await queue.put("after");
  const expected = [
    ...Array.from({ length: 20 }, (_, i) => frame("item", 30 + i)),
    wrapped,
    "after",
  ];
  assert.equal(queue.size, expected.length);
  const got: string[] = [];
  for (let i = 0; i < expected.length; i++) got.push(await within(queue.get({ timeout: 1_000 })));
  assert.deepEqual(got.map((item) => item.slice(0, 12)), expected.map((item) => item.slice(0, 12)));
  assert.deepEqual(got, expected);
  assert.equal(queue.size, 0);
  assert.equal(queue.tryGet(), undefined);
  // The ring still works from there.
  await queue.put("last");
  assert.equal(await queue.get(), "last");
});

Deno.test("Queue: a ring wrapped around many times over stale bytes keeps FIFO order", () => {
  const queue = new Queue<string>();
  // Frames of varying sizes (1,024 to 5,120 bytes), put and taken so that the ring wraps
  // around again and again over what earlier rounds left behind (at most 40 KiB at once).
  let put = 0;
  let taken = 0;
  const item = (i: number) =>
    `${i}:`.padEnd(1_020 + (i % 5) * 1_024, String.fromCharCode(97 + i % 26));
  const inRing: number[] = [];
  let bytes = 0;
  const size = (i: number) => 1_024 + (i % 5) * 1_024;
  for (let round = 0; round < 400; round++) {
    while (bytes + size(put) <= 40 * 1_024) {
      assert.ok(queue.tryPut(item(put)));
      inRing.push(put);
      bytes += size(put++);
    }
    const take = 1 + (round % 7);
    for (let i = 0; i < take && inRing.length > 0; i++) {
      const next = inRing.shift()!;
      const got = queue.tryGet();
      assert.ok(got !== undefined, `item ${next} is missing`);
      assert.equal(got.value.slice(0, 8), item(next).slice(0, 8), `item ${next}`);
      assert.equal(got.value, item(next));
      bytes -= size(next);
      taken++;
    }
  }
  assert.deepEqual(drain(queue).map((s) => Number(s.split(":")[0])), inRing);
  assert.ok(taken > 1_000);
});

/** Puts waiting for the ring's bytes (ROOM_SLEEPERS in the ring's header). */
function roomSleepers(queue: Queue<unknown>): number {
  return queueRing(queue).roomSleepers;
}

Deno.test("Queue: close() wakes puts waiting for the ring's 64 MiB at once, with QueueClosedError", async () => {
  const queue = new Queue<string>();
  await queue.put("a".repeat(40 * 1024 * 1024));
  // 40 MiB are in the ring: 30 more cannot fit in 64 MiB, so these puts wait for a get.
  assert.ok(40 + 30 > MAX_BYTES / 1024 / 1024);
  // An async put on the main thread, with no timeout: only close() can end it.
  const waiting = queue.put("b".repeat(30 * 1024 * 1024));
  let settled = false;
  waiting.then(() => settled = true, () => settled = true);
  assert.equal(roomSleepers(queue), 1);
  // A putSync in a thread, with a timeout far beyond the deadlines here.
  const flags = sharedFlags(1);
  const putter = new Thread({
    target: work.putRepeatedOnce,
    args: [queue, "c", 30 * 1024 * 1024, flags, 20_000],
  }).start();
  await flagSet(flags, 0);
  const end = Date.now() + 10_000;
  while (roomSleepers(queue) < 2) {
    if (Date.now() > end) throw new Error("the thread's put did not wait for room");
    await delay(5);
  }
  assert.equal(settled, false, "the put did not wait for room");
  queue.close();
  const error = await failure(waiting);
  assert.ok(error instanceof QueueClosedError, String(error));
  assert.equal(await within(putter.join()), "QueueClosedError");
  // The item put before close() is still there.
  assert.equal(queue.size, 1);
});
