/**
 * Task functions for the process chapters. A child process imports this
 * module and calls the exported function it is asked for.
 *
 * @module
 */

import { currentProcess, type Mutex, type Queue, type SharedArray, type Value } from "../mod.ts";

/** Counts to `count`, printing `name: i` with a pause between, like the guide's `_counter`. */
export async function counter(count: number, delayMs: number): Promise<string> {
  const { name } = currentProcess();
  for (let i = 1; i <= count; i++) {
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    console.log(`  ${name} (pid ${Deno.pid}): ${i}`);
  }
  return `${name} counted to ${count}`;
}

export function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

/** Adds 1 to `counter` `times` times, atomically. */
export async function addMany(counter: Value<"int32">, times: number): Promise<void> {
  for (let i = 0; i < times; i++) await counter.add(1);
}

/** Fills `squares[i] = i * i` for the indexes `from` … `to - 1`. */
export async function fillSquares(squares: SharedArray<"float64">, from: number, to: number) {
  for (let i = from; i < to; i++) await squares.set(i, i * i);
}

/**
 * Appends `lines` numbered lines to `path`, each as a read-modify-write of
 * the whole file. Without `mutex` two processes lose each other's lines.
 */
export async function appendLines(
  path: string,
  lines: number,
  mutex?: Mutex,
): Promise<void> {
  const { name } = currentProcess();
  for (let i = 0; i < lines; i++) {
    const lease = mutex ? await mutex.acquire() : undefined;
    try {
      const text = await Deno.readTextFile(path);
      await new Promise((resolve) => setTimeout(resolve, 2));
      await Deno.writeTextFile(path, `${text}${name} line ${i}\n`);
    } finally {
      lease?.[Symbol.dispose]();
    }
  }
}

/** Simulated I/O: waits `ms` and returns it. */
export async function fetchLike(ms: number): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return ms;
}

/**
 * The guide's `_counter_queue`: takes `maxCount` items from `queue`, sleeping
 * 10 ms before each `get`, and prints `name: value`.
 */
export async function counterQueue(queue: Queue<number>, maxCount: number): Promise<void> {
  const { name } = currentProcess();
  while (maxCount--) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    console.log(`  ${name}: ${await queue.get()}`);
  }
}

/** The process that runs it: which Redis worker took the task (example 11). */
export function whichWorker(n: number): { n: number; fib: number; pid: number } {
  return { n, fib: fib(n), pid: Deno.pid };
}
