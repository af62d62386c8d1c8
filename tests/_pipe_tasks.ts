// Tasks for tests/process_pipes_test.ts: a child's output, its ways to die,
// and what it holds when a task is cancelled.
import type { Event, Value } from "../mod.ts";

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
