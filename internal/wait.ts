/**
 * The one way to wait on a shared word. Every primitive (sync/, queue/, Value)
 * waits through these two functions, so timeouts, abort signals and the
 * keep-alive rule below live in one place.
 *
 * - {@linkcode waitSync} blocks the calling thread with `Atomics.wait`. It is
 *   for workers; on the main thread it would freeze the event loop.
 * - {@linkcode waitAsync} uses `Atomics.waitAsync`, which lets the event loop
 *   run. A pending `Atomics.waitAsync` does not keep a Deno program alive
 *   (denoland/deno#15358: the program ends with "Top-level await promise never
 *   resolved"), so while it waits it holds a timer for the wait's duration.
 *
 * Both return why they woke: `"ok"` (notified, possibly spuriously),
 * `"not-equal"` (the word had already changed), `"timed-out"`, or, for the
 * async form, `"aborted"`. Callers re-check their condition in a loop.
 * {@linkcode notify} wakes sleepers.
 *
 * Words in mapped memory (`memory.ts`: shared with child processes) are not
 * a `SharedArrayBuffer`, which `Atomics.wait` requires; waits on them use
 * the futex (`libc.ts`) instead, blocking for `waitSync` and on a thread of
 * Deno's blocking pool for `waitAsync` (a pending call keeps the program
 * alive). One futex sleep lasts at most {@linkcode FUTEX_SLICE_MS}, then
 * the wait sleeps again (it returns nothing for it), so no pool thread
 * sleeps long for a wait whose worker is gone.
 *
 * Also {@linkcode settledWithin}: a wait for a promise (a close, a last
 * write) that must not outlast a grace period.
 *
 * @module
 */

import { futexWait, futexWaitOffThread, futexWake } from "./libc.ts";
import { addressOf } from "./memory.ts";
import { checkMilliseconds, MAX_TIMER_MS } from "./options.ts";

/** The longest one futex sleep lasts before the wait sleeps again. */
export const FUTEX_SLICE_MS = 1000;

/** Options every waiting call takes. */
export interface WaitOptions {
  /** Milliseconds to wait at most. `undefined` or `Infinity` waits forever. */
  timeout?: number;
  /** Stops the wait when aborted. */
  signal?: AbortSignal;
}

/** Why a wait returned. */
export type WakeReason = "ok" | "not-equal" | "timed-out" | "aborted";

/**
 * Checks a `timeout` option and returns it as a number of milliseconds
 * (`Infinity` when absent).
 *
 * @throws {RangeError} When it is negative or not a number.
 */
export function checkTimeout(timeout: number | undefined, where: string): number {
  return timeout === undefined ? Infinity : checkMilliseconds(timeout, "timeout", where);
}

/**
 * A point in time by which a looping wait must end; `remaining()` is what is
 * left of it for the next `Atomics` call.
 */
export class Deadline {
  readonly #end: number;

  /** @param timeout Milliseconds from now; `Infinity` never ends. */
  constructor(timeout: number) {
    this.#end = endOf(timeout);
  }

  /** Milliseconds left, never negative. */
  remaining(): number {
    return this.#end === Infinity ? Infinity : Math.max(0, this.#end - performance.now());
  }

  /** Whether the time is up. */
  get expired(): boolean {
    return this.remaining() === 0;
  }
}

/**
 * Blocks until `words[index]` is notified or no longer equals `expected`.
 *
 * @param words The shared words.
 * @param index Which word.
 * @param expected Sleep only while the word holds this value.
 * @param timeout Milliseconds to wait at most.
 */
export function waitSync(
  words: Int32Array,
  index: number,
  expected: number,
  timeout: number = Infinity,
): WakeReason {
  const address = futexAddress(words, index);
  if (address === undefined) return Atomics.wait(words, index, expected, timeout);
  const end = endOf(timeout);
  for (;;) {
    const woken = futexWait(address, expected, slice(end));
    const reason = futexReason(woken, words, index, expected, end);
    if (reason !== undefined) return reason;
  }
}

/** When a wait of `timeout` ms that starts now ends (`performance.now()` time). */
function endOf(timeout: number): number {
  return timeout === Infinity ? Infinity : performance.now() + timeout;
}

/** How long the next futex sleep of a wait that ends at `end` lasts. */
function slice(end: number): number {
  return Math.min(Math.max(0, end - performance.now()), FUTEX_SLICE_MS);
}

/** Where the futex finds `words[index]`, or `undefined` when `Atomics` waits on it. */
function futexAddress(words: Int32Array, index: number): number | undefined {
  if (words.buffer instanceof SharedArrayBuffer) return undefined;
  const base = addressOf(words.buffer);
  return base === undefined ? undefined : base + words.byteOffset + index * 4;
}

/**
 * Why a futex sleep ended, as `Atomics.wait` says it; `undefined` when only
 * its slice (or a signal) ended it, and the wait sleeps again.
 */
function futexReason(
  woken: number,
  words: Int32Array,
  index: number,
  expected: number,
  end: number,
): WakeReason | undefined {
  if (woken === 0) return "ok";
  if (Atomics.load(words, index) !== expected) return "not-equal";
  return performance.now() >= end ? "timed-out" : undefined;
}

/**
 * Wakes up to `count` sleepers on `words[index]` (all by default), in this
 * thread's process and, for mapped memory, in every other.
 *
 * @returns How many it woke.
 */
export function notify(words: Int32Array, index: number, count: number = Infinity): number {
  const address = futexAddress(words, index);
  return address === undefined ? Atomics.notify(words, index, count) : futexWake(address, count);
}

/**
 * Waits without blocking until `words[index]` is notified or no longer equals
 * `expected`, keeping the program alive meanwhile.
 *
 * @param words The shared words.
 * @param index Which word.
 * @param expected Sleep only while the word holds this value.
 * @param timeout Milliseconds to wait at most.
 * @param signal Ends the wait with `"aborted"`.
 */
export function waitAsync(
  words: Int32Array,
  index: number,
  expected: number,
  timeout: number = Infinity,
  signal?: AbortSignal,
): Promise<WakeReason> {
  if (signal?.aborted) return Promise.resolve("aborted");
  const address = futexAddress(words, index);
  if (address !== undefined) {
    return futexWaitAsync(words, index, address, expected, timeout, signal);
  }
  const result = Atomics.waitAsync(words, index, expected, timeout);
  if (!result.async) return Promise.resolve(result.value);
  return new Promise<WakeReason>((resolve) => {
    // The interval only keeps the event loop open until the wait settles;
    // Atomics.waitAsync does the timing. (A timer of exactly `timeout` ms
    // fires first and lets the program end before the wait's own timeout.)
    const keepAlive = setInterval(() => {}, MAX_TIMER_MS);
    const onAbort = () => {
      finish("aborted");
      // Wake our own pending waitAsync so it does not linger; other waiters on
      // the word see a spurious wake-up and re-check their condition.
      Atomics.notify(words, index);
    };
    const finish = (reason: WakeReason) => {
      clearInterval(keepAlive);
      signal?.removeEventListener("abort", onAbort);
      resolve(reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    result.value.then(finish);
  });
}

/** One async wait of this thread on a mapped word. */
interface Sleeper {
  readonly words: Int32Array;
  readonly index: number;
  readonly expected: number;
  /** When it times out (`performance.now()` time), `Infinity` for never. */
  readonly end: number;
  readonly resolve: (reason: WakeReason) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: (() => void) | undefined;
  /** Ends the wait at `end` even while the line's futex call sleeps for longer. */
  timer?: ReturnType<typeof setTimeout>;
}

/** The async waits of this thread on one mapped word, oldest first, and their futex call. */
interface Line {
  readonly sleepers: Sleeper[];
  /** Whether a futex call sleeps for them now. */
  pending: boolean;
  /** Wakes the word while a call sleeps for nobody (see {@linkcode futexWaitAsync}). */
  poke: ReturnType<typeof setTimeout> | undefined;
}

/** This thread's lines, by their word's address. */
const lines = new Map<number, Line>();

/**
 * {@linkcode waitAsync} on mapped memory. The async waits of this thread on
 * one word form a line, oldest first, for which one futex call sleeps on a
 * thread of Deno's blocking pool (whose calls start in no set order): a
 * wake-up goes to the oldest, as `Atomics.waitAsync` serves its waiters, so
 * waits made in order (as the process broker makes them) are served in
 * order, and a thread holds one pool thread per word, not one per wait. The
 * others look again: those whose word changed return `"not-equal"`, the rest
 * sleep on in the next call. An aborted wait leaves the line at once; if
 * nobody is left in it, the word is woken (every sleeper on it sees a
 * spurious wake-up) until the call has returned, so that no call is left
 * sleeping, and swallowing wake-ups, for nobody.
 */
function futexWaitAsync(
  words: Int32Array,
  index: number,
  address: number,
  expected: number,
  timeout: number,
  signal: AbortSignal | undefined,
): Promise<WakeReason> {
  if (Atomics.load(words, index) !== expected) return Promise.resolve("not-equal");
  return new Promise<WakeReason>((resolve) => {
    let line = lines.get(address);
    const first = line === undefined;
    if (line === undefined) {
      line = { sleepers: [], pending: false, poke: undefined };
      lines.set(address, line);
    }
    const onAbort = signal === undefined ? undefined : () => leave(address, sleeper, "aborted");
    const sleeper: Sleeper = {
      words,
      index,
      expected,
      end: endOf(timeout),
      resolve,
      signal,
      onAbort,
    };
    line.sleepers.push(sleeper);
    if (onAbort !== undefined) signal!.addEventListener("abort", onAbort, { once: true });
    if (timeout !== Infinity) {
      const check = () => {
        const left = sleeper.end - performance.now();
        sleeper.timer = left > 0
          ? setTimeout(check, Math.ceil(left))
          : leave(address, sleeper, "timed-out");
      };
      sleeper.timer = setTimeout(check, Math.ceil(timeout));
    }
    if (first) void sleepFor(address, line);
  });
}

function settle(sleeper: Sleeper, reason: WakeReason): void {
  if (sleeper.onAbort !== undefined) sleeper.signal!.removeEventListener("abort", sleeper.onAbort);
  clearTimeout(sleeper.timer);
  sleeper.resolve(reason);
}

/** A wait aborted, or timed out while the line's call sleeps on, leaves its line. */
function leave(address: number, sleeper: Sleeper, reason: "aborted" | "timed-out"): undefined {
  const line = lines.get(address);
  const at = line === undefined ? -1 : line.sleepers.indexOf(sleeper);
  if (at < 0) return;
  line!.sleepers.splice(at, 1);
  settle(sleeper, reason);
  if (line!.sleepers.length === 0 && line!.pending && line!.poke === undefined) {
    const wakeAll = () => {
      futexWake(address, Infinity);
      line!.poke = setTimeout(wakeAll, 1);
    };
    wakeAll();
  }
}

/** Sleeps in the futex for the line at `address`, a slice at a time, until nobody is in it. */
async function sleepFor(address: number, line: Line): Promise<void> {
  const sleepers = line.sleepers;
  try {
    for (;;) {
      const now = performance.now();
      let end = now + FUTEX_SLICE_MS;
      for (let i = 0; i < sleepers.length;) {
        const sleeper = sleepers[i];
        if (Atomics.load(sleeper.words, sleeper.index) !== sleeper.expected) {
          sleepers.splice(i, 1);
          settle(sleeper, "not-equal");
        } else if (sleeper.end <= now) {
          sleepers.splice(i, 1);
          settle(sleeper, "timed-out");
        } else {
          end = Math.min(end, sleeper.end);
          i++;
        }
      }
      if (sleepers.length === 0) return;
      line.pending = true;
      let woken: number;
      try {
        woken = await futexWaitOffThread(address, sleepers[0].expected, end - now);
      } catch {
        // The call failed: a spurious wake-up for the oldest, who looks again.
        woken = 0;
      } finally {
        line.pending = false;
        clearTimeout(line.poke);
        line.poke = undefined;
      }
      if (woken === 0) {
        // The wake-up goes to the oldest; with nobody left (they aborted or timed out while
        // the call slept), it is passed on, or a grant made for it would find no taker.
        if (sleepers.length > 0) settle(sleepers.shift()!, "ok");
        else futexWake(address, 1);
      }
    }
  } finally {
    lines.delete(address);
  }
}

/**
 * One wait that a waiting algorithm asks its driver to perform.
 *
 * A primitive that waits both ways (`acquire()` and `acquireSync()`) writes its
 * loop once, as a generator of these ({@linkcode WaitSteps}); {@linkcode runSync}
 * performs each with {@linkcode waitSync}, {@linkcode runAsync} with
 * {@linkcode waitAsync}, and both send the wake reason back into the loop.
 */
export interface WaitRequest {
  /** The shared words. */
  words: Int32Array;
  /** Which word. */
  index: number;
  /** Sleep only while the word holds this value. */
  expected: number;
  /** Milliseconds to wait at most. */
  timeout: number;
  /** Ends an async wait with `"aborted"`; a blocking wait cannot be interrupted. */
  signal?: AbortSignal;
}

/** A waiting algorithm: yields the waits it needs, receives why each ended. */
export type WaitSteps<T> = Generator<WaitRequest, T, WakeReason>;

/** Runs a waiting algorithm, blocking the calling thread in each wait. */
export function runSync<T>(steps: WaitSteps<T>): T {
  let step = steps.next();
  while (!step.done) {
    const { words, index, expected, timeout } = step.value;
    step = steps.next(waitSync(words, index, expected, timeout));
  }
  return step.value;
}

/** Runs a waiting algorithm without blocking, keeping the program alive while it waits. */
export async function runAsync<T>(steps: WaitSteps<T>): Promise<T> {
  let step = steps.next();
  while (!step.done) {
    const { words, index, expected, timeout, signal } = step.value;
    step = steps.next(await waitAsync(words, index, expected, timeout, signal));
  }
  return step.value;
}

/**
 * Waits until `promise` settles (either way), for at most `ms`; the timer is
 * cleared when the promise wins.
 *
 * @returns Whether it settled in time.
 */
export async function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
