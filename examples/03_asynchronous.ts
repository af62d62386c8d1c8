/**
 * Guide chapter II.3, "The asynchronous mechanism": futures. Mirrors Python's
 *
 *     futures = [executor.submit(sleepy, s) for s in (0.3, 0.1, 0.2)]
 *     for future in as_completed(futures): print(future.result())
 *     done, pending = wait(futures, return_when=FIRST_COMPLETED)
 *     future.cancel()                 # then future.result() raises CancelledError
 *
 * `submit` returns a `Task` (Python's `Future`): await it for the result.
 *
 * @module
 */

import { asCompleted, CancelledError, tasks, ThreadPool, TimeoutError, wait } from "../mod.ts";

const work = tasks<typeof import("./_work.ts")>(new URL("./_work.ts", import.meta.url));

/** Runs the example. */
export async function main(): Promise<void> {
  await using pool = new ThreadPool({ maxWorkers: 3 });
  const lengths = [300, 100, 200];

  // asCompleted: each task as it finishes, whatever the order of submission.
  const sleepers = lengths.map((ms) => pool.submit(work.sleepy, ms));
  console.log(
    `submitted sleepy(${lengths.join("), sleepy(")}); asCompleted yields them as they finish:`,
  );
  for await (const task of asCompleted(sleepers)) {
    console.log(`  sleepy(${await task}) finished`);
  }

  // wait: returns as soon as the first task finishes; the others keep running.
  const again = lengths.map((ms) => pool.submit(work.sleepy, ms));
  const { done, pending } = await wait(again, { returnWhen: "FIRST_COMPLETED" });
  const first = await Promise.all(done);
  console.log(`wait FIRST_COMPLETED: done = [${first}], ${pending.size} still pending`);
  const all = await wait(again); // returnWhen defaults to "ALL_COMPLETED"
  console.log(`wait ALL_COMPLETED:   ${all.done.size} done, ${all.pending.size} pending`);

  // A task's own error comes back when it is awaited, with its message intact.
  try {
    await pool.submit(work.failAfter, 10, "the disk is full");
  } catch (error) {
    console.log(`a failing task:       ${(error as Error).name}: ${(error as Error).message}`);
  }

  // timeout (counted from when the task starts) ends it with TimeoutError.
  try {
    await pool.apply(work.patientSleep, [1_000], { timeout: 100 });
  } catch (error) {
    console.log(`timeout 100 ms:       ${describe(error)}`);
  }

  // cancel() ends a running (or waiting) task with CancelledError.
  const long = pool.submit(work.patientSleep, 1_000);
  await new Promise((resolve) => setTimeout(resolve, 50));
  console.log(
    `cancel():             returned ${long.cancel()}, task.cancelled = ${long.cancelled}`,
  );
  try {
    await long;
  } catch (error) {
    console.log(`  awaiting it:        ${describe(error)}`);
  }
}

function describe(error: unknown): string {
  if (error instanceof TimeoutError || error instanceof CancelledError) {
    return `${error.name}: ${error.message}`;
  }
  throw error;
}

if (import.meta.main) await main();
