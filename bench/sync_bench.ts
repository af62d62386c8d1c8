/**
 * Benchmarks of `sync/`, run with `deno bench -A bench/sync_bench.ts`.
 *
 * Every iteration of the thread benches runs 1,000,000 operations in a
 * worker, so "time/iter" in milliseconds reads as nanoseconds per operation.
 * The async bench runs 1,000 acquires per iteration: milliseconds read as
 * microseconds per acquire.
 *
 * - uncontended: one thread locks and unlocks, with nobody else around:
 *   `Mutex.acquireSync()` + `release()` (and with `using`) against a bare
 *   `Atomics.compareExchange` spin lock, the floor for any lock over shared
 *   memory.
 * - contended: two threads (2 × 500,000) fight for the same lock.
 * - atomic add: `Value.addSync(1)` on an int32 against a bare `Atomics.add`,
 *   1,000,000 in one thread.
 * - async: the hand-off to the main thread. A thread holds the mutex; the
 *   main thread calls `acquire()`, which joins the line, and tells the
 *   thread, which releases: the mutex is granted to the main thread, whose
 *   `Atomics.waitAsync` resolves through the event loop. Each op is one such
 *   round trip. And, for scale, `await acquire()` with nobody else around.
 *
 * @module
 */

import { tasks, ThreadPool, Value } from "../mod.ts";
import { Mutex } from "../sync/mod.ts";
import { HOLDING, STOP, TAKEN, WAITING } from "./_sync_bench_tasks.ts";

const work = tasks<typeof import("./_sync_bench_tasks.ts")>(
  new URL("./_sync_bench_tasks.ts", import.meta.url),
);

const OPS = 1_000_000;
const ACQUIRES = 1_000;

const pool = new ThreadPool({ maxWorkers: 2, minWorkers: 2 });
const bare = new Int32Array(new SharedArrayBuffer(4));
const mutex = new Mutex();
const counter = new Value("int32", 0);
const bareCounter = new Int32Array(new SharedArrayBuffer(4));

Deno.bench({
  name: "bare compareExchange lock, 1 thread (ms/iter = ns/op)",
  group: "uncontended",
  baseline: true,
  n: 30,
  warmup: 5,
  async fn() {
    await pool.submit(work.bareLock, bare, OPS);
  },
});

Deno.bench({
  name: "Mutex acquireSync + release, 1 thread",
  group: "uncontended",
  n: 30,
  warmup: 5,
  async fn() {
    await pool.submit(work.mutexLock, mutex, OPS);
  },
});

Deno.bench({
  name: "Mutex using acquireSync(), 1 thread",
  group: "uncontended",
  n: 30,
  warmup: 5,
  async fn() {
    await pool.submit(work.mutexUsing, mutex, OPS);
  },
});

Deno.bench({
  name: "bare compareExchange lock, 2 threads (ms/iter = ns/op)",
  group: "contended",
  baseline: true,
  n: 20,
  warmup: 3,
  async fn() {
    await Promise.all([1, 2].map(() => pool.submit(work.bareLock, bare, OPS / 2)));
  },
});

Deno.bench({
  name: "Mutex acquireSync + release, 2 threads",
  group: "contended",
  n: 20,
  warmup: 3,
  async fn() {
    await Promise.all([1, 2].map(() => pool.submit(work.mutexLock, mutex, OPS / 2)));
  },
});

Deno.bench({
  name: "bare Atomics.add, 1 thread (ms/iter = ns/op)",
  group: "atomic add",
  baseline: true,
  n: 30,
  warmup: 5,
  async fn() {
    await pool.submit(work.bareAdd, bareCounter, OPS);
  },
});

Deno.bench({
  name: "Value addSync(1), 1 thread",
  group: "atomic add",
  n: 30,
  warmup: 5,
  async fn() {
    await pool.submit(work.valueAdd, counter, OPS);
  },
});

Deno.bench({
  name: "main thread await acquire(), handed over by a thread (ms/iter = µs/op)",
  group: "async",
  n: 10,
  warmup: 2,
  async fn(b) {
    const flags = new Int32Array(new SharedArrayBuffer(16));
    const holder = pool.submit(work.holdUntilWaited, mutex, flags);
    b.start();
    for (let i = 0; i < ACQUIRES; i++) {
      while (Atomics.load(flags, HOLDING) === 0) await Promise.resolve();
      const lease = mutex.acquire(); // joins the line at once
      Atomics.store(flags, WAITING, 1);
      Atomics.notify(flags, WAITING);
      const held = await lease;
      Atomics.store(flags, TAKEN, 1);
      Atomics.notify(flags, TAKEN);
      held[Symbol.dispose]();
    }
    b.end();
    Atomics.store(flags, STOP, 1);
    Atomics.notify(flags, WAITING);
    await holder;
  },
});

Deno.bench({
  name: "main thread await acquire(), uncontended (ms/iter = µs/op)",
  group: "async",
  n: 10,
  warmup: 2,
  async fn() {
    for (let i = 0; i < ACQUIRES; i++) {
      using _lock = await mutex.acquire();
    }
  },
});
