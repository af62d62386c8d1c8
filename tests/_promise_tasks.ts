// Task functions the promise tests (pool_promises_test.ts) run in workers, by reference
// through tasks(). Each reports what it saw through shared flags, so that the tests assert
// the order of events, never how long something took.
import { currentTask, currentThread } from "../mod.ts";

/** Sleeps on `flags[index]` until it is non-zero, blocking the thread; false after `limitMs`. */
function blockUntilSet(flags: Int32Array, index: number, limitMs: number): boolean {
  const end = Date.now() + limitMs;
  while (Atomics.load(flags, index) === 0) {
    const left = end - Date.now();
    if (left <= 0) return false;
    Atomics.wait(flags, index, 0, Math.min(left, 50));
  }
  return true;
}

/** Waits on `flags[index]` without blocking the thread until it is non-zero; false after `limitMs`. */
async function awaitSet(flags: Int32Array, index: number, limitMs: number): Promise<boolean> {
  const end = Date.now() + limitMs;
  while (Atomics.load(flags, index) === 0) {
    const left = end - Date.now();
    if (left <= 0) return false;
    const wait = Atomics.waitAsync(flags, index, 0, Math.min(left, 50));
    if (wait.async) await wait.value;
  }
  return true;
}

function raise(flags: Int32Array, index: number, value = 1): void {
  Atomics.store(flags, index, value);
  Atomics.notify(flags, index);
}

/** Raises `flags[index]` and returns the id of the thread that ran it. */
export function raiseFlag(flags: Int32Array, index: number): number {
  raise(flags, index);
  return currentThread().id;
}

/** The id of the thread that runs it. */
export function threadId(): number {
  return currentThread().id;
}

/**
 * A synchronous loop that never polls `currentTask()`: raises `flags[started]`, blocks
 * until `flags[release]` is raised (at most `limitMs`), then raises `flags[ended]`.
 * Returns the id of its thread.
 */
export function stuckUntil(
  flags: Int32Array,
  started: number,
  release: number,
  ended: number,
  limitMs: number,
): number {
  raise(flags, started);
  blockUntilSet(flags, release, limitMs);
  raise(flags, ended);
  return currentThread().id;
}

/**
 * An async task that ignores its signal: raises `flags[started]`, awaits `flags[release]`
 * (at most `limitMs`), then raises `flags[seen]` — which it can only do while its worker
 * is still alive.
 */
export async function ignoreSignalUntil(
  flags: Int32Array,
  started: number,
  release: number,
  seen: number,
  limitMs: number,
): Promise<string> {
  raise(flags, started);
  const released = await awaitSet(flags, release, limitMs);
  if (released) raise(flags, seen);
  return released ? "released" : "ran out";
}

/**
 * Polls `currentTask().cancelled` (never touching `signal`) until it is true, then reads
 * `currentTask().signal` for the first time: `flags[2]` is 1 if it was already aborted,
 * 2 if not. `flags[0]`: started; `flags[1]`: looked.
 */
export function signalAfterCancelSync(flags: Int32Array): void {
  raise(flags, 0);
  const end = Date.now() + 10_000;
  while (!currentTask().cancelled && Date.now() < end) {
    Atomics.wait(flags, 3, 0, 1);
  }
  raise(flags, 2, currentTask().signal.aborted ? 1 : 2);
  raise(flags, 1);
}

/**
 * Awaits `flags[3]` (raised by the test after it cancelled the task), then reads
 * `currentTask().signal` for the first time: `flags[2]` is 1 if it was already aborted,
 * 2 if not. `flags[0]`: started; `flags[1]`: looked.
 */
export async function signalAfterCancelAsync(flags: Int32Array): Promise<void> {
  raise(flags, 0);
  await awaitSet(flags, 3, 10_000);
  raise(flags, 2, currentTask().signal.aborted ? 1 : 2);
  raise(flags, 1);
}

/** An error class of the task module, with own properties of its own. */
export class CodedError extends Error {
  code: string;
  retryable: boolean;
  detail: { attempts: number; hosts: string[] };

  constructor(message: string, code: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CodedError";
    this.code = code;
    this.retryable = true;
    this.detail = { attempts: 3, hosts: ["a", "b"] };
  }
}

/** Throws a {@linkcode CodedError} with `code`, caused by a RangeError. */
export function failWithCode(code: string): never {
  throw new CodedError(`failed with ${code}`, code, { cause: new RangeError("the inner cause") });
}

/** Throws a standard TypeError that carries a `code` of its own. */
export function failWithTypeCode(code: string): never {
  throw Object.assign(new TypeError(`typed failure ${code}`), { code });
}

/**
 * An initializer: while `flags[0]` is above zero, takes one from it and ends its worker
 * with `Deno.exit(3)` before the worker answers anything.
 */
export function exitWhileCounted(flags: Int32Array): void {
  if (Atomics.sub(flags, 0, 1) > 0) Deno.exit(3);
  Atomics.add(flags, 0, 1); // not counted down: leave it at 0
}

/** The pid of the child process that runs it. */
export function processId(): number {
  return Deno.pid;
}

/** Sleeps `ms` (an async task a child can be killed in). */
export function sleep(ms: number): Promise<number> {
  return new Promise((resolve) => setTimeout(() => resolve(ms), ms));
}
