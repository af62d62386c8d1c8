import type { Queue } from "../mod.ts";

/** Gets every item until the queue is closed, one `get` at a time. */
export async function drainOneByOne(queue: Queue<number>): Promise<number> {
  let count = 0;
  for await (const _ of queue) count++;
  return count;
}

/** Gets `count` items with up to `inFlight` gets outstanding at once. */
export async function drainPipelined(
  queue: Queue<number>,
  count: number,
  inFlight: number,
): Promise<number> {
  let got = 0;
  while (got < count) {
    const gets: Promise<number>[] = [];
    for (let i = 0; i < Math.min(inFlight, count - got); i++) gets.push(queue.get());
    got += (await Promise.all(gets)).length;
  }
  return got;
}
