import type { Queue } from "../mod.ts";

/** Gets `count` items, one `await queue.get()` at a time; their sum. */
export async function sumOneByOne(queue: Queue<number>, count: number): Promise<number> {
  let sum = 0;
  for (let i = 0; i < count; i++) sum += await queue.get();
  return sum;
}

/** Gets every item until the queue is closed, one `get` at a time. */
export async function drainOneByOne(queue: Queue<number>): Promise<number> {
  let count = 0;
  for await (const _ of queue) count++;
  return count;
}
