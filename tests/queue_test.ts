// Queue on one thread: values, FIFO, bounds, timeouts, close, growth, bad input.
import assert from "node:assert/strict";
import { remote, type RemoteSpec } from "../internal/codec.ts";
import { Queue, QueueClosedError, TimeoutError } from "../queue/mod.ts";
import { INITIAL_BYTES, itemFromBytes, itemToBytes, MAX_BYTES } from "../queue/_ring.ts";
import { SerializationError } from "../errors.ts";
import { failure, within } from "./_helpers.ts";

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether `promise` is still pending after `ms`. */
async function pendingAfter(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  promise.then(() => settled = true, () => settled = true);
  await delay(ms);
  return !settled;
}

const PRIMITIVES: unknown[] = [
  undefined,
  null,
  "",
  0,
  -0,
  NaN,
  Infinity,
  -Infinity,
  1,
  -1,
  1.5,
  2 ** 27 - 1, // the largest integer kept in the frame word
  2 ** 27,
  -(2 ** 27),
  -(2 ** 27) - 1,
  2 ** 31,
  Number.MAX_SAFE_INTEGER,
  Number.MIN_VALUE,
  true,
  false,
  "plain",
  "héllo wörld ✓ 日本語 😀 \u0000 \uFFFF",
  "\uFEFF starts with a byte order mark",
  "lone surrogates: \uD800 \uDFFF",
  "\uDC00".repeat(300),
  "x".repeat(256),
  "é".repeat(257), // a long string: encoded before the lock
  "😀".repeat(100_000),
  "a".repeat(1_000_000),
];

Deno.test("Queue: primitives round-trip exactly (undefined, null, '', 0, -0, NaN, unicode, long strings)", async () => {
  const queue = new Queue<unknown>();
  for (const item of PRIMITIVES) await queue.put(item);
  assert.equal(queue.size, PRIMITIVES.length);
  for (const expected of PRIMITIVES) {
    const got = await queue.get({ timeout: 1000 });
    assert.ok(Object.is(got, expected), `expected ${String(expected).slice(0, 20)}`);
  }
  assert.equal(queue.size, 0);
});

Deno.test("Queue: structured values round-trip (Map, Set, Date, BigInt, typed arrays, objects)", () => {
  const queue = new Queue<unknown>();
  const values: unknown[] = [
    new Map<unknown, unknown>([["a", 1], [2, { b: [3] }]]),
    new Set([1, "two", 3n]),
    new Date(1_700_000_000_000),
    12345678901234567890123n,
    -1n,
    new Uint8Array([0, 1, 255]),
    new Float64Array([0.5, -0, NaN]),
    new BigInt64Array([1n, -2n]),
    { nested: { list: [1, null, undefined, "s"], when: new Date(0) } },
    [1, [2, [3]]],
    /re+gex/gi,
    new RangeError("boom"),
  ];
  for (const value of values) queue.putSync(value);
  for (const expected of values) assert.deepStrictEqual(queue.getSync({ timeout: 1000 }), expected);
});

Deno.test("Queue: plain objects travel as JSON only when JSON carries them exactly", async () => {
  const shared = { n: 1 };
  const sparse = [1, , 3];
  const extra = Object.assign([1, 2], { label: "x" });
  const deep: Record<string, unknown> = {};
  let at = deep;
  for (let i = 0; i < 40; i++) at = (at.next = {}) as Record<string, unknown>;
  const nullProto = Object.assign(Object.create(null), { a: 1 });
  const items: unknown[] = [
    { a: 1, b: [1, "x", null, true, -1.5, 1e308], c: { d: "\ud800 lone" } },
    { negativeZero: { z: -0 } },
    { missing: undefined },
    { big: [NaN, Infinity] },
    { both: shared, again: shared },
    sparse,
    extra,
    deep,
    nullProto,
    [{ when: new Date(7) }],
  ];
  const queue = new Queue<unknown>();
  for (const item of items) await queue.put(item);
  const got: unknown[] = [];
  for (const _ of items) got.push(await queue.get({ timeout: 1_000 }));
  for (
    const [copy, via] of [[got, "a queue"], [
      items.map((i) => itemFromBytes(itemToBytes(i))),
      "bytes",
    ]] as const
  ) {
    assert.deepEqual(copy, items.map((i) => i === nullProto ? { a: 1 } : i), via);
    const [, zero, missing, , twice, holes, props] = copy as Record<string, any>[];
    assert.ok(Object.is(zero.negativeZero.z, -0), `${via}: -0 kept`);
    assert.ok("missing" in missing, `${via}: an undefined property kept`);
    assert.equal(twice.both, twice.again, `${via}: one object seen twice stays one`);
    assert.ok(!(1 in holes), `${via}: a hole stays a hole`);
    assert.equal(props.label, "x", `${via}: an array's own property kept`);
  }
});

Deno.test("Queue: an array whose class has a toJSON comes out as the array it was", async () => {
  class Path extends Array<number> {
    toJSON() {
      return this.join("/");
    }
  }
  const path = new Path();
  path.push(1, 2, 3);
  const queue = new Queue<unknown>();
  await queue.put(path);
  await queue.put({ at: path });
  assert.deepEqual(await queue.get({ timeout: 1_000 }), [1, 2, 3]);
  assert.deepEqual(await queue.get({ timeout: 1_000 }), { at: [1, 2, 3] });
  assert.deepEqual(itemFromBytes(itemToBytes({ at: path })), { at: [1, 2, 3] });
});

Deno.test("Queue: items come out in the order they were put", async () => {
  const queue = new Queue<number>();
  for (let i = 0; i < 10_000; i++) await queue.put(i);
  for (let i = 0; i < 10_000; i++) assert.equal(await queue.get(), i);
});

Deno.test("Queue: puts started without awaiting keep their order, bounded or not", async () => {
  for (const maxSize of [undefined, 2]) {
    const queue = new Queue<number>({ maxSize });
    const puts = Array.from({ length: 50 }, (_, i) => queue.put(i, { timeout: 5000 }));
    const got: number[] = [];
    for (let i = 0; i < 50; i++) got.push(await within(queue.get()));
    await within(Promise.all(puts));
    assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => i));
  }
});

Deno.test("Queue: tryGet tells an empty queue from an undefined item", async () => {
  const queue = new Queue<undefined | null>();
  assert.equal(queue.tryGet(), undefined);
  await queue.put(undefined);
  await queue.put(null);
  assert.deepEqual(queue.tryGet(), { value: undefined });
  assert.deepEqual(queue.tryGet(), { value: null });
  assert.equal(queue.tryGet(), undefined);
});

Deno.test("Queue: a bounded queue makes put wait until a get makes room", async () => {
  const queue = new Queue<string>({ maxSize: 2 });
  assert.equal(queue.maxSize, 2);
  await queue.put("a");
  assert.equal(queue.tryPut("b"), true);
  assert.equal(queue.tryPut("c"), false);
  const third = queue.put("c", { timeout: 5000 });
  assert.ok(await pendingAfter(third, 50), "put did not wait on a full queue");
  assert.equal(await queue.get(), "a");
  await within(third);
  assert.deepEqual([await queue.get(), await queue.get()], ["b", "c"]);
  assert.equal(new Queue().maxSize, Infinity);
});

Deno.test("Queue: waiting gets are served in the order they came", async () => {
  const queue = new Queue<number>();
  const order: number[] = [];
  const gets = [0, 1, 2, 3].map((i) =>
    queue.get({ timeout: 5000 }).then((item) => order.push(i) && item)
  );
  await delay(20);
  for (let i = 10; i < 14; i++) await queue.put(i);
  assert.deepEqual(await within(Promise.all(gets)), [10, 11, 12, 13]);
  assert.deepEqual(order, [0, 1, 2, 3]);
});

Deno.test("Queue: get and put time out with TimeoutError", async () => {
  const empty = new Queue<number>();
  const start = performance.now();
  const error = await failure(empty.get({ timeout: 40 }));
  assert.ok(error instanceof TimeoutError);
  assert.match(error.message, /Queue\.get\(\) timed out after 40 ms/);
  assert.ok(performance.now() - start >= 35, "gave up too early");
  assert.ok((await failure(empty.get({ timeout: 0 }))) instanceof TimeoutError);

  const full = new Queue<number>({ maxSize: 1 });
  await full.put(1);
  const putError = await failure(full.put(2, { timeout: 30 }));
  assert.ok(putError instanceof TimeoutError);
  assert.match(putError.message, /Queue\.put\(\) timed out after 30 ms/);
  assert.equal(full.size, 1);
  // The timed-out put left no trace: the place is still there for the next one.
  assert.equal(await full.get(), 1);
  await within(full.put(3, { timeout: 1000 }));
  assert.equal(await full.get(), 3);
});

Deno.test("Queue: an aborted signal rejects a waiting get or put with its reason", async () => {
  const queue = new Queue<number>({ maxSize: 1 });
  const controller = new AbortController();
  const reason = new Error("stop waiting");
  const get = queue.get({ signal: controller.signal });
  setTimeout(() => controller.abort(reason), 20);
  assert.equal(await failure(get), reason);

  await queue.put(1);
  const putController = new AbortController();
  const put = queue.put(2, { signal: putController.signal });
  setTimeout(() => putController.abort(), 20);
  assert.equal((await failure(put)).name, "AbortError");
  assert.equal(await failure(queue.get({ signal: AbortSignal.abort(reason) })), reason);
  // Nothing was lost or added by the aborted calls.
  assert.equal(queue.size, 1);
  assert.equal(await queue.get(), 1);
  await within(queue.put(3));
  assert.equal(await queue.get(), 3);
});

Deno.test("Queue: the main thread's timers keep firing while it awaits get", async () => {
  const queue = new Queue<string>();
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 10);
  setTimeout(() => queue.putSync("late"), 200);
  try {
    assert.equal(await within(queue.get()), "late");
    assert.ok(ticks >= 8, `only ${ticks} ticks while waiting ~200 ms`);
  } finally {
    clearInterval(ticker);
  }
});

Deno.test("Queue: close lets gets drain the items, then ends iteration", async () => {
  const queue = new Queue<number>();
  for (let i = 0; i < 5; i++) await queue.put(i);
  queue.close();
  queue.close(); // again: nothing happens
  assert.equal(queue.closed, true);
  assert.equal(await queue.get(), 0);
  assert.deepEqual(queue.tryGet(), { value: 1 });
  const rest: number[] = [];
  for await (const item of queue) rest.push(item);
  assert.deepEqual(rest, [2, 3, 4]);
  const error = await failure(queue.get());
  assert.ok(error instanceof QueueClosedError);
  assert.match(error.message, /closed and empty/);
  assert.throws(() => queue.tryGet(), QueueClosedError);
  assert.throws(() => queue.getSync(), QueueClosedError);
});

Deno.test("Queue: put after close fails with QueueClosedError", async () => {
  const queue = new Queue<number>();
  queue.close();
  const error = await failure(queue.put(1));
  assert.ok(error instanceof QueueClosedError);
  assert.match(error.message, /Queue\.put\(\): the queue is closed/);
  assert.throws(() => queue.putSync(1), QueueClosedError);
  assert.throws(() => queue.tryPut(1), QueueClosedError);
  assert.equal(queue.size, 0);
});

Deno.test("Queue: close wakes waiting gets and puts with QueueClosedError", async () => {
  const empty = new Queue<number>();
  const gets = [1, 2, 3].map(() => empty.get({ timeout: 5000 }));
  const full = new Queue<number>({ maxSize: 1 });
  await full.put(0);
  const puts = [1, 2].map((i) => full.put(i, { timeout: 5000 }));
  await delay(20);
  empty.close();
  full.close();
  for (const error of await within(Promise.all([...gets, ...puts].map((p) => failure(p))))) {
    assert.ok(error instanceof QueueClosedError, String(error));
  }
  assert.equal(await full.get(), 0);
});

Deno.test("Queue: the ring grows past its first size, also while wrapped around", async () => {
  const queue = new Queue<string>();
  const item = (i: number) => `${i}:`.padEnd(1000, "x");
  // Wrap the ring around first: fill most of it, take half, fill again.
  const fits = Math.floor(INITIAL_BYTES / 1004);
  const half = Math.floor(fits / 2);
  for (let i = 0; i < fits; i++) await queue.put(item(i));
  for (let i = 0; i < half; i++) assert.equal(await queue.get(), item(i));
  // Then put far more than the first size holds (about 1 MB), so it grows several times.
  for (let i = fits; i < 1000; i++) await queue.put(item(i));
  assert.equal(queue.size, 1000 - half);
  for (let i = half; i < 1000; i++) assert.equal(await queue.get(), item(i));
  assert.equal(queue.size, 0);
});

Deno.test("Queue: at its 64 MiB limit the ring makes put wait for a get", async () => {
  const queue = new Queue<Uint8Array>();
  const big = new Uint8Array(40 * 1024 * 1024).fill(7);
  await queue.put(big);
  assert.equal(queue.tryPut(big), false);
  assert.ok((await failure(queue.put(big, { timeout: 20 }))) instanceof TimeoutError);
  const second = queue.put(big, { timeout: 10_000 });
  assert.ok(await pendingAfter(second, 50), "put did not wait for room");
  assert.equal((await queue.get()).length, big.length);
  await within(second);
  const got = await queue.get();
  assert.equal(got.length, big.length);
  assert.equal(got[got.length - 1], 7);
  assert.equal(queue.size, 0);
});

Deno.test("Queue: an item larger than the ring's limit fails with a RangeError; the queue still works", async () => {
  assert.equal(Queue.MAX_BYTES, MAX_BYTES);
  const queue = new Queue<unknown>();
  await queue.put("before");
  const error = await failure(queue.put(new Uint8Array(MAX_BYTES)));
  assert.ok(error instanceof RangeError);
  assert.match(error.message, /an item of \d+ bytes .* at most 67108864 bytes \(64 MiB\)/);
  assert.throws(() => queue.putSync("y".repeat(MAX_BYTES + 1)), /at least 67108865 bytes/);
  assert.throws(() => queue.tryPut(new Uint8Array(MAX_BYTES)), RangeError);
  await queue.put("after");
  assert.deepEqual([await queue.get(), await queue.get()], ["before", "after"]);
  assert.equal(queue.size, 0);
});

Deno.test("Queue: an item that cannot be copied fails with SerializationError; the queue still works", async () => {
  const queue = new Queue<unknown>();
  const error = await failure(queue.put(() => 1));
  assert.ok(error instanceof SerializationError);
  assert.match(error.message, /Cannot put a function in a queue/);
  assert.throws(() => queue.putSync(Symbol("s")), SerializationError);
  await queue.put(1);
  assert.equal(await queue.get(), 1);
});

Deno.test("Queue: an item whose getter throws fails with SerializationError", async () => {
  const queue = new Queue<unknown>();
  const item = {
    get broken(): never {
      throw new Error("no");
    },
  };
  const error = await failure(queue.put({ nested: item }));
  assert.ok(error instanceof SerializationError, String(error));
  assert.throws(() => itemToBytes(item), SerializationError);
  await queue.put(1);
  assert.equal(await queue.get(), 1);
});

Deno.test("Queue: bad maxSize and timeout values fail with errors naming them", async () => {
  for (const bad of [-1, 0, NaN, 1.5, 2 ** 31]) {
    assert.throws(
      () => new Queue({ maxSize: bad }),
      (error: Error) =>
        error instanceof RangeError && error.message.includes(`current value is ${bad}`),
    );
  }
  assert.throws(() => new Queue({ maxSize: "3" as unknown as number }), TypeError);
  assert.throws(
    () => new Queue({ maxsize: 3 } as unknown as { maxSize: number }),
    /unknown option 'maxsize'/,
  );
  const queue = new Queue<number>();
  const error = await failure(queue.get({ timeout: -1 }));
  assert.ok(error instanceof RangeError);
  assert.match(error.message, /'timeout' must be .* current value is -1/);
  assert.throws(() => queue.putSync(1, { timeout: NaN }), RangeError);
});

Deno.test("Queue: a child process must use the async forms", () => {
  const spec = (new Queue() as unknown as { [remote]: RemoteSpec })[remote];
  assert.deepEqual(Object.keys(spec.immediate ?? {}).sort(), [
    "closed",
    "getSync",
    "putSync",
    "size",
    "tryGet",
    "tryPut",
  ]);
  assert.deepEqual(spec.oneWay, ["close"]);
});
