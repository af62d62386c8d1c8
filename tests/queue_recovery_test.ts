// A queue's ring mended after a child died changing it (queue/_ring.ts, "Child processes"),
// played in one process: a child's view of the ring (a Ring with inChild) runs a change that stops
// at a chosen instruction, memory is put back as it was at that instant, the lock word names a
// dead pid, and the parent runs recoverFrom. Heap rings (--deny-ffi) or mapped ones alike.
import assert from "node:assert/strict";
import { PriorityQueue } from "../mod.ts";
import { queueRing } from "../queue/queue.ts";
import { encodePayload, frameBytes, Ring } from "../queue/_ring.ts";

const FAKE = 4_100_000; // a pid nobody has (< 2^22)
const LOCK = 0, NOTED = 2, COUNT = 6, CAPACITY = 7, DEAD_BYTES = 59;
const MiB = 1 << 20;
const big = (c: string) => c.repeat(MiB - 4); // one 1 MiB frame

/**
 * Runs `op` on a child's view; at the store to NOTED that `pick` picks, the child "dies"
 * (before that store, or just `after` it). The parent then recovers.
 */
function dieAt(
  ring: Ring,
  op: (child: Ring) => unknown,
  pick: (value: number) => boolean,
  after = false,
): void {
  const state = ring.state;
  const child = new Ring(state, true);
  const real = Atomics.store;
  let snap: Uint8Array[] | undefined;
  // deno-lint-ignore no-explicit-any
  (Atomics as any).store = (a: any, i: number, v: number) => {
    if (a === child.header && i === NOTED && snap === undefined && pick(v)) {
      if (after) real(a, i, v);
      snap = [state.header, state.data, state.index!].map((b) => new Uint8Array(b).slice());
      throw new Error("killed");
    }
    return real(a, i, v);
  };
  try {
    op(child);
  } catch (e) {
    if ((e as Error).message !== "killed") throw e;
  } finally {
    Atomics.store = real;
  }
  assert.ok(snap !== undefined, "never reached the kill point");
  [state.header, state.data, state.index!].forEach((b, k) => new Uint8Array(b).set(snap![k]));
  new Int32Array(state.header)[LOCK] = FAKE;
  ring.recoverFrom(FAKE);
  assert.deepEqual(ring.lockHolder, 0);
}

Deno.test("a child killed after its get passed dead frames: the dead bytes stay counted, a put compacts", () => {
  const run = (kill: boolean) => {
    const q = new PriorityQueue<string>();
    const ring = queueRing(q);
    const h = new Int32Array(ring.state.header);
    q.putSync("A", { priority: 1 });
    for (let i = 0; i < 16; i++) q.putSync(big("b"), { priority: 0 });
    while (q.tryPut(big("f"), { priority: 5 }));
    assert.deepEqual(h[CAPACITY], 64 * MiB);
    for (let i = 0; i < 16; i++) q.getSync(); // the b's: taken out of order, dead
    assert.deepEqual(h[DEAD_BYTES], 16 * MiB);
    if (kill) {
      // the child's get takes "A" (the head), #nextLive walks the 16 dead frames, then it dies
      dieAt(ring, (c) => c.tryTake("get()"), (v) => v > 0);
    }
    assert.deepEqual(q.getSync(), "A");
    // refill the freed 16 MiB with priority 4, then take 8 of them out of order
    while (q.tryPut(big("g"), { priority: 4 }));
    for (let i = 0; i < 8; i++) assert.deepEqual(q.getSync()[0], "g");
    return { dead: h[DEAD_BYTES], put: q.tryPut(big("h"), { priority: 9 }) };
  };
  assert.deepEqual(run(false), { dead: 8 * MiB, put: true });
  assert.deepEqual(run(true), { dead: 8 * MiB, put: true });
});

Deno.test("a child killed just after taking the last item: no dead bytes are left counted", () => {
  const q = new PriorityQueue<string>();
  const ring = queueRing(q);
  const h = new Int32Array(ring.state.header);
  q.putSync("A", { priority: 9 });
  for (let i = 0; i < 16; i++) q.putSync(big("b"), { priority: 0 });
  q.putSync("Z", { priority: 1 });
  for (let i = 0; i < 16; i++) q.getSync(); // dead: 16 MiB, after HEAD ("A")
  assert.deepEqual(q.getSync(), "Z"); // the newest frame: TAIL goes back
  assert.deepEqual(h[DEAD_BYTES], 16 * MiB);
  // the child takes "A", the last item (COUNT 1), and dies right after its commit
  dieAt(ring, (c) => c.tryTake("get()"), (v) => v === 0, true);
  assert.deepEqual(h[COUNT], 0);
  assert.deepEqual(h[CAPACITY], 32 * MiB);
  // Were 16 MiB still counted dead, the first compaction would make room for 16 MiB of ~31 MiB of
  // live frames, and throw.
  for (let i = 0; i < 40; i++) q.putSync(big("c"), { priority: 0 });
  assert.deepEqual(h[DEAD_BYTES], 0);
});

Deno.test("a child killed after its put grew the ring (moving a wrapped run), before noting the put", () => {
  const q = new PriorityQueue<string>();
  const ring = queueRing(q);
  const k = (s: string) => s.repeat(8 * 1024 - 8);
  for (let i = 0; i < 7; i++) q.putSync(k(String(i)), { priority: i });
  for (let i = 0; i < 3; i++) q.getSync();
  for (let i = 7; i < 9; i++) q.putSync(k(String(i)), { priority: i }); // wraps
  const item = "x".repeat(20_000);
  const payload = encodePayload(item);
  let n = 0;
  // the first NOTED store > 0 is #grow's commit; the second, the put's
  dieAt(
    ring,
    (c) => c.write(item, payload, frameBytes(item, payload), false, 0),
    (v) => v > 0 && ++n === 2,
  );
  assert.deepEqual(ring.capacity, 128 * 1024);
  const got = [];
  for (let r = q.tryGet(); r !== undefined; r = q.tryGet()) got.push(r.value[0]);
  assert.deepEqual(got, ["3", "4", "5", "6", "7", "8"]);
});

Deno.test("index grows past 1024 entries behind the 2 KiB of undo records (heap and mapped)", () => {
  const q = new PriorityQueue<number>();
  const n = 70_000;
  for (let i = 0; i < n; i++) q.putSync(i, { priority: (i * 7919) % 1000 });
  const got: number[] = [];
  for (let r = q.tryGet(); r !== undefined; r = q.tryGet()) got.push(r.value);
  const want = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
    (a * 7919) % 1000 - (b * 7919) % 1000 || a - b
  );
  assert.deepEqual(got, want);
  const idx = queueRing(q).state.index!;
  assert.ok(idx.byteLength >= 2048 + 1024 * 24);
});
