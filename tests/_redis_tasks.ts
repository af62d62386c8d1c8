// Task functions the Redis pool tests run on their worker processes, by reference.
import { currentTask } from "../mod.ts";
import { RedisQueue } from "../redis/mod.ts";

export function add(a: number, b: number): number {
  return a + b;
}

/** The id of the worker process that ran it. */
export function whoRuns(): number {
  return Deno.pid;
}

export class CustomError extends Error {
  override name = "CustomError";
  code = 42;
}

export function fail(message: string): never {
  throw new CustomError(message);
}

/** Says it started (on `started`), then waits `ms`; returns the pid of its worker process. */
export async function startThenWait(url: string, started: string, ms: number): Promise<number> {
  await using queue = new RedisQueue<number>({ url, name: started });
  await queue.put(Deno.pid);
  await new Promise((resolve) => setTimeout(resolve, ms));
  return Deno.pid;
}

/**
 * Says "started" on `told`, waits until its task is cancelled (at most `ms`), and says so on
 * `told`. (A task cancelled before it starts never runs: a test waits for "started" first.)
 */
export async function waitForCancel(url: string, told: string, ms: number): Promise<string> {
  const { signal } = currentTask();
  const ended = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  await using queue = new RedisQueue<string>({ url, name: told });
  await queue.put("started");
  await ended;
  await queue.put(signal.aborted ? "cancelled" : "ran out");
  return "done";
}
