// Tasks for tests/process_pipes_test.ts: a child's output, its ways to die,
// and what it holds when a task is cancelled.
import type { Event, Queue, Value } from "../mod.ts";

/** How a task may end its child, or fail on its own. */
export type Ending = "none" | "throw" | "exit" | "kill" | "uncaught";

/** Counts its run in `runs`, then returns `i` or ends as `ending` says. */
export async function counted(runs: Value<"int32">, i: number, ending: Ending): Promise<number> {
  await runs.add(1);
  switch (ending) {
    case "throw":
      throw new TypeError(`task ${i} failed on its own`);
    case "exit":
      Deno.exit(3);
      break;
    case "kill":
      Deno.kill(Deno.pid, "SIGKILL");
      break;
    case "uncaught":
      setTimeout(() => {
        throw new Error("uncaught in a timer");
      });
      await new Promise(() => {});
  }
  return i;
}

/** Prints `i` three ways, then returns it. */
export function printed(i: number): number {
  console.log(`log ${i}`);
  Deno.stdout.writeSync(new TextEncoder().encode(`write ${i}\n`));
  console.info(`info ${i}`);
  return i;
}

/** Writes through `node:process`, behind the library's back, then returns `after`. */
export async function nodeStdout(text: string): Promise<string> {
  const { stdout } = await import("node:process");
  await new Promise<void>((resolve) => stdout.write(text, () => resolve()));
  return "after";
}

/** Writes raw bytes to fd 1, then returns `"real"`. */
export function rawBytes(bytes: number[]): string {
  Deno.stdout.writeSync(Uint8Array.from(bytes));
  return "real";
}

/** Waits for `event`, then returns this child's pid. */
export async function pidAfter(event: Event): Promise<number> {
  await event.wait();
  return Deno.pid;
}

/** Returns this child's pid. */
export function pid(): number {
  return Deno.pid;
}

/** Returns `i + 1` at once, or ends its child synchronously when `exit` is set. */
export function addOrExit(i: number, exit: boolean): number {
  if (exit) Deno.exit(3);
  return i + 1;
}

/** `n` bytes of `fill`. */
export function bytes(fill: number, n: number): Uint8Array {
  return new Uint8Array(n).fill(fill);
}

/** Sums `data` after a broker answer has come through this child's reader. */
export async function sumAfterGet(data: Uint8Array, queue: Queue<string>): Promise<string> {
  const got = await queue.get();
  return `got ${got.length}, sum=${data.reduce((a, b) => a + b, 0)}`;
}

/** Writes `bytes` to fd 1, then waits `ms` before it answers. */
export async function bytesThenWait(bytes: number[], ms: number): Promise<string> {
  Deno.stdout.writeSync(Uint8Array.from(bytes));
  await new Promise((resolve) => setTimeout(resolve, ms));
  return "done";
}

/** Busy for `ms` milliseconds, then returns how long it ran. */
export function spin(ms: number): number {
  const start = Date.now();
  while (Date.now() < start + ms) {
    // busy
  }
  return Date.now() - start;
}

/** Prints `mib` MiB of text. */
export function printMuch(mib: number): string {
  const line = "z".repeat(1023);
  for (let i = 0; i < mib * 1024; i++) console.log(line);
  return "printed";
}

/** A string of `mib` MiB. */
export function bigText(mib: number): string {
  return "q".repeat(mib * 1024 * 1024);
}

/**
 * Starts a background shell that prints a dot to this child's stdout every
 * 0.2 s, and outlives it; returns the shell's pid, read from `pidFile`.
 */
export async function chattyGrandchild(pidFile: string): Promise<number> {
  await new Deno.Command("sh", {
    args: ["-c", `(while :; do printf .; sleep 0.2; done) & echo $! > ${pidFile}`],
    stdin: "null",
    stdout: "inherit",
    stderr: "null",
  }).output();
  return Number(Deno.readTextFileSync(pidFile).trim());
}

/** Resolves once its task is cancelled. */
export async function untilCancelled(): Promise<string> {
  const { currentTask } = await import("../mod.ts");
  const signal = currentTask().signal;
  await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
  return "cancelled";
}
