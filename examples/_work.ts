/**
 * The task module the examples share. A worker imports this file and calls
 * the exported function it is asked for, so these functions may use imports
 * and module state like any other code (Python's pickling by reference).
 *
 * The examples name these functions with
 * `tasks<typeof import("./_work.ts")>(new URL("./_work.ts", import.meta.url))`.
 *
 * @module
 */

import { currentTask, currentThread } from "../mod.ts";

/** Resolves after `ms` milliseconds. */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Counts from 1 to `count`, printing `thread name: i` with a pause before
 * each line, like the guide's `_counter`. Returns a summary.
 */
export async function counter(count: number, delayMs: number): Promise<string> {
  const name = currentThread().name;
  for (let i = 1; i <= count; i++) {
    await sleep(delayMs);
    console.log(`  ${name}: ${i}`);
  }
  return `${name} counted to ${count}`;
}

/** The `n`th Fibonacci number, computed the slow way: CPU-bound work. */
export function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

/** Sleeps for `ms` milliseconds (I/O-bound work), then returns `ms`. */
export async function sleepy(ms: number): Promise<number> {
  await sleep(ms);
  return ms;
}

/** Sleeps for `ms` milliseconds, then fails with `message`. */
export async function failAfter(ms: number, message: string): Promise<never> {
  await sleep(ms);
  throw new Error(message);
}

/**
 * Sleeps in small steps for up to `ms` milliseconds, stopping early when the
 * task is cancelled or times out. Returns how long it actually slept.
 */
export async function patientSleep(ms: number): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < ms && !currentTask().cancelled) await sleep(10);
  return Math.round(performance.now() - start);
}

/** Which thread ran the call: `name` and the `x` it was given. */
export function whoAmI(x: number): string {
  return `${x} on ${currentThread().name}`;
}
