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
 *
 * Also {@linkcode settledWithin}: a wait for a promise (a close, a last
 * write) that must not outlast a grace period.
 *
 * @module
 */

import { checkMilliseconds, MAX_TIMER_MS } from "./options.ts";

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
    this.#end = timeout === Infinity ? Infinity : performance.now() + timeout;
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
  return Atomics.wait(words, index, expected, timeout);
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
