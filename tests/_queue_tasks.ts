// Task functions the queue tests run in threads, by reference through tasks().
import type { JoinableQueue, Queue } from "../queue/mod.ts";

const WAIT = 10_000;

/** Puts `from` … `from + count - 1` with `putSync`. */
export function produceSync(queue: Queue<number>, from: number, count: number): number {
  for (let i = 0; i < count; i++) queue.putSync(from + i, { timeout: WAIT });
  return count;
}

/** Puts `from` … `from + count - 1` with `await put`. */
export async function produceAsync(
  queue: Queue<number>,
  from: number,
  count: number,
): Promise<number> {
  for (let i = 0; i < count; i++) await queue.put(from + i, { timeout: WAIT });
  return count;
}

/** Gets with `getSync` until the queue is closed and empty; returns the items in order. */
export function consumeSync(queue: Queue<number>): number[] {
  const items: number[] = [];
  for (;;) {
    try {
      items.push(queue.getSync({ timeout: WAIT }));
    } catch (error) {
      if ((error as Error).name === "QueueClosedError") return items;
      throw error;
    }
  }
}

/** Iterates with `for await` until the queue is closed and empty; returns the items in order. */
export async function consumeAsync(queue: Queue<number>): Promise<number[]> {
  const items: number[] = [];
  for await (const item of queue) items.push(item);
  return items;
}

/** Gets `count` items from `input` and puts each into `output`, as they came. */
export function echo(input: Queue<unknown>, output: Queue<unknown>, count: number): number {
  for (let i = 0; i < count; i++) output.putSync(input.getSync({ timeout: WAIT }));
  return count;
}

/** Same as {@linkcode echo}, with the async methods. */
export async function echoAsync(
  input: Queue<unknown>,
  output: Queue<unknown>,
  count: number,
): Promise<number> {
  for (let i = 0; i < count; i++) await output.put(await input.get({ timeout: WAIT }));
  return count;
}

/** Puts each item with `putSync`, counting in `flags[0]` how many went in. */
export function putEach(queue: Queue<number>, items: number[], flags: Int32Array): void {
  for (const item of items) {
    queue.putSync(item, { timeout: WAIT });
    Atomics.add(flags, 0, 1);
  }
}

/** Raises `flags[0]`, then `getSync`s once; returns the item or the error's name. */
export function getOnce(queue: Queue<unknown>, flags: Int32Array, timeout: number): unknown {
  Atomics.store(flags, 0, 1);
  try {
    return queue.getSync({ timeout });
  } catch (error) {
    return (error as Error).name;
  }
}

/** Raises `flags[0]`, then `putSync`s once; returns "put" or the error's name. */
export function putOnce(
  queue: Queue<unknown>,
  item: unknown,
  flags: Int32Array,
  timeout: number,
): string {
  Atomics.store(flags, 0, 1);
  try {
    queue.putSync(item, { timeout });
    return "put";
  } catch (error) {
    return (error as Error).name;
  }
}

/** Gets items until closed, marking each done after `ms` of "work"; returns how many. */
export function workAndMarkDone(queue: JoinableQueue<number>, ms: number): number {
  let done = 0;
  for (;;) {
    try {
      queue.getSync({ timeout: WAIT });
    } catch (error) {
      if ((error as Error).name === "QueueClosedError") return done;
      throw error;
    }
    if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    queue.taskDone();
    done++;
  }
}

/** `joinSync` in a thread; returns "joined" or the error's name. */
export function joinInThread(queue: JoinableQueue<number>, timeout: number): string {
  try {
    queue.joinSync({ timeout });
    return "joined";
  } catch (error) {
    return (error as Error).name;
  }
}

/** Uses queues found inside an object and an array: moves one item from the first to the second. */
export function nestedQueues(arg: { queues: Queue<string>[] }): string {
  const [input, output] = arg.queues;
  const item = input.getSync({ timeout: WAIT });
  output.putSync(item.toUpperCase());
  return item;
}

/** Puts `from` … `from + count - 1`, up to `batch` puts in flight at once (for a process's handle). */
export async function produceBatched(
  queue: Queue<number>,
  from: number,
  count: number,
  batch = 100,
): Promise<number> {
  for (let start = 0; start < count; start += batch) {
    const puts: Promise<void>[] = [];
    for (let i = start; i < Math.min(count, start + batch); i++) puts.push(queue.put(from + i));
    await Promise.all(puts);
  }
  return count;
}

/** Echoes every item of `input` into `output` until `input` is closed (process side). */
export async function relay(input: Queue<unknown>, output: Queue<unknown>): Promise<number> {
  let count = 0;
  for await (const item of input) {
    await output.put(item);
    count++;
  }
  return count;
}

/**
 * Raises `flags[0]`, then `putSync`s a string of `length` times `char` once; returns "put" or
 * the error's name. (The item is made here, so that a big one does not travel as an argument.)
 */
export function putRepeatedOnce(
  queue: Queue<string>,
  char: string,
  length: number,
  flags: Int32Array,
  timeout: number,
): string {
  return putOnce(queue as Queue<unknown>, char.repeat(length), flags, timeout);
}
