// Task functions the tests run in workers, by reference through tasks().
import { currentProcess, currentTask, currentThread, type Event, type Value } from "../mod.ts";

export function add(a: number, b: number): number {
  return a + b;
}

export function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

export function sleep(ms: number, value?: unknown): Promise<unknown> {
  return new Promise((resolve) => setTimeout(() => resolve(value ?? ms), ms));
}

/** Waits until `event` is set (at most 10 s), then returns `value`. */
export async function afterEvent<T>(event: Event, value: T): Promise<T> {
  await event.wait({ timeout: 10_000 });
  return value;
}

export function whoAmI(): { name: string; id: number } {
  return currentThread();
}

export class CustomError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CustomError";
  }
}

export function fail(message: string): never {
  throw new CustomError(message, { cause: new RangeError("the inner cause") });
}

export function closeSelf(): void {
  (globalThis as unknown as { close(): void }).close();
}

export function exitSelf(code: number): void {
  Deno.exit(code);
}

export function throwInTimer(): Promise<never> {
  setTimeout(() => {
    throw new Error("thrown from a timer");
  }, 0);
  return new Promise(() => {});
}

/**
 * Spins until cancelled, for at most `limitMs`. Records in `flags[0]` that it
 * started and in `flags[1]` that it saw the cancellation.
 */
export function spinUntilCancelled(flags: Int32Array, limitMs: number): string {
  Atomics.store(flags, 0, 1);
  Atomics.notify(flags, 0);
  const end = Date.now() + limitMs;
  while (Date.now() < end) {
    if (currentTask().cancelled) {
      Atomics.store(flags, 1, 1);
      Atomics.notify(flags, 1);
      return "cancelled";
    }
  }
  return "ran out";
}

/** Waits on the task's signal; records in `flags[1]` that it was aborted. */
export function awaitAbort(flags: Int32Array): Promise<string> {
  Atomics.store(flags, 0, 1);
  return new Promise((resolve) => {
    currentTask().signal.addEventListener("abort", () => {
      Atomics.store(flags, 1, 1);
      resolve("aborted");
    });
  });
}

export function returnFunction(): () => void {
  return () => {};
}

export function count(flags: Int32Array): number {
  return Atomics.add(flags, 0, 1) + 1;
}

let initialized = "no";

export function init(value: string): void {
  initialized = value;
}

export function readInit(): string {
  return initialized;
}

export function failInit(): void {
  throw new Error("initializer refused");
}

export function byteLength(buffer: ArrayBuffer): number {
  return buffer.byteLength;
}

export const notAFunction = 42;

/** Sets `flags[0]`, then sleeps and returns `value`. */
export async function startThenSleep(
  flags: Int32Array,
  ms: number,
  value: string,
): Promise<string> {
  Atomics.store(flags, 0, 1);
  await new Promise((resolve) => setTimeout(resolve, ms));
  return value;
}

export function killSelf(): void {
  Deno.kill(Deno.pid, "SIGKILL");
}

/** Appends `text` and a newline to `path` (each run leaves one line). */
export function appendLine(path: string, text: string): string {
  Deno.writeTextFileSync(path, text + "\n", { append: true });
  return text;
}

/** Busy-loops for `ms` without ever yielding. */
export function busyFor(ms: number): number {
  const end = Date.now() + ms;
  let spins = 0;
  while (Date.now() < end) spins++;
  return spins;
}

export function echo<T>(value: T): T {
  return value;
}

export function say(text: string): void {
  console.log(text);
}

export function readEnv(name: string): string | undefined {
  return Deno.env.get(name);
}

export function whoAmIProcess(): { name: string; id: number; pid: number } {
  return { ...currentProcess(), pid: Deno.pid };
}

/** An initializer that counts its worker in `started`, then fails. */
export function countThenFail(started: Value<"int32">): Promise<never> {
  return started.add(1).then(() => {
    throw new Error("initializer failed");
  });
}

/** Returns `i`, except that the task numbered `at` ends its worker with `Deno.exit(3)`. */
export function exitAt(i: number, at: number): number {
  if (i === at) Deno.exit(3);
  return i;
}

/** Allocates until the heap is full: only a heap limit ends it. */
export function exhaustHeap(): number {
  const kept: number[][] = [];
  while (true) kept.push(new Array(100_000).fill(kept.length));
}

/** The working directory the task runs in. */
export function workingDirectory(): string {
  return Deno.cwd();
}

/**
 * Counts itself in `counter`, then waits without blocking its worker until
 * `expected` tasks have: only tasks that run at once get past it. Returns the
 * id of its worker.
 */
export async function arriveAndWait(
  counter: Value<"int32">,
  expected: number,
  limitMs = 10_000,
): Promise<number> {
  await counter.add(1);
  const deadline = Date.now() + limitMs;
  while (await counter.load() < expected) {
    if (Date.now() > deadline) throw new Error(`only ${await counter.load()} tasks ran at once`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return currentProcess().id || currentThread().id;
}

/**
 * Keeps its own task context from the start, awaits its signal (at most
 * `ms`), and returns whether its context says it was cancelled.
 */
export async function awaitOwnCancel(ms: number): Promise<boolean> {
  const context = currentTask();
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    context.signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return context.cancelled;
}
