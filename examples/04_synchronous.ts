/**
 * Guide chapter II.4, "The synchronous mechanism". Mirrors Python's
 *
 *     lock = threading.Lock()
 *     def _counter(...):
 *         lock.acquire()
 *         ...            # read, change and write the shared value
 *         lock.release()
 *
 * Two threads add to one counter in shared memory. Without a lock, a thread
 * can read the counter, be overtaken by the other thread's write, and then
 * write back a stale value: additions are lost and the total comes out
 * wrong. Deno's threads have no interpreter lock, so this happens far more
 * often than in Python. With a `Mutex` around each addition, the total is
 * exact. A `Barrier` makes both threads start at the same moment.
 *
 * @module
 */

import { tasks, Thread } from "../mod.ts";
import { Barrier, Mutex } from "../sync/mod.ts";

const work = tasks<typeof import("./_sync_counter.ts")>(
  new URL("./_sync_counter.ts", import.meta.url),
);

/** Additions per thread without a lock: enough that the threads surely overlap. */
const UNLOCKED_TIMES = 20_000_000;
/** Additions per thread with the lock (each one takes and gives back the mutex). */
const LOCKED_TIMES = 500_000;

/** Runs the example. */
export async function main(): Promise<void> {
  const unlocked = new Int32Array(new SharedArrayBuffer(4));
  let start = new Barrier(2);
  let began = performance.now();
  await Promise.all(
    ["khanh thread", "ai thread"].map((name) =>
      new Thread({ target: work.addWithoutLock, args: [start, unlocked, UNLOCKED_TIMES], name })
        .start()
        .join()
    ),
  );
  report("without a lock", unlocked[0], UNLOCKED_TIMES, began);

  const locked = new Int32Array(new SharedArrayBuffer(4));
  const mutex = new Mutex();
  start = new Barrier(2);
  began = performance.now();
  await Promise.all(
    ["khanh thread", "ai thread"].map((name) =>
      new Thread({ target: work.addWithLock, args: [start, mutex, locked, LOCKED_TIMES], name })
        .start()
        .join()
    ),
  );
  report("with a Mutex   ", locked[0], LOCKED_TIMES, began);
}

function report(how: string, total: number, times: number, since: number): void {
  const lost = 2 * times - total;
  console.log(
    `${how}: 2 threads x ${times.toLocaleString("en")} additions -> ` +
      `${total.toLocaleString("en")} (${lost.toLocaleString("en")} lost) ` +
      `in ${Math.round(performance.now() - since)} ms`,
  );
}

if (import.meta.main) await main();
