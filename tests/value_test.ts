// Value and SharedArray from threads and the main thread.
import assert from "node:assert/strict";
import { SharedArray, ThreadPool, Value } from "../mod.ts";
import { within } from "./_helpers.ts";

Deno.test("Value.addSync from two threads is exact, and add returns the new value", async () => {
  await using pool = new ThreadPool({ maxWorkers: 2 });
  const value = new Value("int32", 5);
  const add = (v: Value<"int32">, n: number) => {
    for (let i = 0; i < n; i++) v.addSync(1);
  };
  await within(Promise.all([pool.submit(add, value, 50_000), pool.submit(add, value, 50_000)]));
  assert.equal(value.loadSync(), 100_005);
  assert.equal(await value.add(-5), 100_000);
});

Deno.test("each type wraps, checks and compares as it should", async () => {
  const byte = new Value("uint8", 255);
  assert.equal(byte.addSync(1), 0);
  // The expected value is taken as the cell's type takes it: -1 is 255 in a uint8.
  byte.storeSync(255);
  assert.equal(byte.compareExchangeSync(-1, 3), true);
  assert.equal(byte.loadSync(), 3);
  const small = new Value("int8", 127);
  assert.equal(small.addSync(1), -128);
  assert.equal(small.addSync(1), -127, "the same scratch cell serves every call");
  const big = new Value("bigint64", 1n);
  assert.equal(await big.add(2n), 3n);
  assert.equal(big.compareExchangeSync(3n, 10n), true);
  assert.equal(big.compareExchangeSync(3n, 11n), false);
  assert.equal(big.loadSync(), 10n);
  const real = new Value("float64", 0.5);
  assert.equal(await real.add(0.25), 0.75);
  assert.equal(await real.compareExchange(0.75, 2), true);
  assert.throws(() => real.storeSync(1n as never), /a float64 holds a number: current value is 1n/);
  assert.throws(() => new Value("int33" as never), /'type' must be one of int8/);
  assert.throws(() => big.storeSync(1 as never), /a bigint64 holds a bigint/);
  assert.equal(real.loadSync(), 2);
});

Deno.test("SharedArray is shared with threads and checks its indexes", async () => {
  await using pool = new ThreadPool({ maxWorkers: 2 });
  const array = new SharedArray("int32", [1, 2, 3]);
  await within(pool.submit((a: SharedArray<"int32">) => a.addSync(1, 40), array));
  assert.deepEqual(await array.toArray(), [1, 42, 3]);
  assert.throws(
    () => array.getSync(3),
    /'index' must be a whole number from 0 to 2: current value is 3/,
  );
  assert.throws(() => new SharedArray("int8", -1), /'length' must be a whole number >= 0/);
  assert.equal(array.length, 3);
});

Deno.test("the lock guards a compound update across threads", async () => {
  await using pool = new ThreadPool({ maxWorkers: 2 });
  const value = new Value("float64", 0);
  const update = (v: Value<"float64">, n: number) => {
    for (let i = 0; i < n; i++) {
      const lease = v.lock.acquireSync();
      v.storeSync(v.loadSync() + 1);
      lease[Symbol.dispose]();
    }
  };
  await within(
    Promise.all([pool.submit(update, value, 20_000), pool.submit(update, value, 20_000)]),
  );
  assert.equal(value.loadSync(), 40_000);
});
