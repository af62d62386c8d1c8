/**
 * `Event`: Python's `threading.Event` over one shared word.
 *
 * ```text
 *   Int32Array over a SharedArrayBuffer of 1 word
 *   ┌───────────────────────────────────────────┐
 *   │ 0 STATE                                   │
 *   │   bit 0      SET: the flag                │
 *   │   bits 1–31  how many times set() raised  │
 *   │              it (wraps around)            │
 *   └───────────────────────────────────────────┘
 * ```
 *
 * `set()` raises the flag and bumps the count in one `compareExchange`, then
 * wakes every waiter; `clear()` lowers the flag. A waiter reads STATE and,
 * when the flag is down, sleeps on STATE with the value it read. Since only
 * `set()` changes STATE while the flag is down, any change it wakes to means
 * the event was set while it waited, so it returns `true` even if `clear()`
 * already followed (as Python's `Event.wait` does): a quick set-then-clear
 * still releases every waiter. Waiters do not compete for anything, so there
 * is no order to keep: `set()` releases all of them.
 *
 * @module
 */

import {
  describe,
  type DescribeContext,
  type Descriptor,
  registerReviver,
  remote,
  type RemoteSpec,
} from "../internal/codec.ts";
import {
  checkTimeout,
  Deadline,
  notify,
  runAsync,
  runSync,
  type WaitOptions,
  type WaitSteps,
} from "../internal/wait.ts";
import type { SharedRef } from "../internal/memory.ts";
import { abortReason, adopting, adoption, sharedState, sharedWords } from "./_shared.ts";

const STATE = 0;
const SET = 1;

/**
 * A flag shared by every thread it is passed to (Python's
 * `threading.Event`): `wait()` waits until some thread calls `set()`.
 *
 * @example Wait for a signal, or time out
 * ```ts
 * import assert from "node:assert/strict";
 * import { Event } from "@parallel/core";
 *
 * const ready = new Event();
 * setTimeout(() => ready.set(), 10);
 * assert.deepEqual(await ready.wait({ timeout: 1000 }), true);
 * ready.clear();
 * assert.deepEqual(await ready.wait({ timeout: 10 }), false);
 * ```
 */
export class Event {
  readonly #words: Int32Array;

  /**
   * Creates an event whose flag is down.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Event } from "@parallel/core";
   * const event = new Event();
   * assert.deepEqual(event.isSet, false);
   * ```
   */
  constructor() {
    this.#words = new Int32Array(adoption() ?? sharedWords(1).buffer);
  }

  /** Whether the flag is up. */
  get isSet(): boolean {
    return (Atomics.load(this.#words, STATE) & SET) !== 0;
  }

  /**
   * Raises the flag and wakes every waiter. Does nothing if it is up.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Event } from "@parallel/core";
   * const event = new Event();
   * event.set();
   * assert.deepEqual(event.isSet, true);
   * ```
   */
  set(): void {
    const words = this.#words;
    let state = Atomics.load(words, STATE);
    while ((state & SET) === 0) {
      const seen = Atomics.compareExchange(words, STATE, state, (state + 2) | SET);
      if (seen === state) {
        notify(words, STATE);
        return;
      }
      state = seen;
    }
  }

  /**
   * Lowers the flag, so later waits wait again.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Event } from "@parallel/core";
   * const event = new Event();
   * event.set();
   * event.clear();
   * assert.deepEqual(event.isSet, false);
   * ```
   */
  clear(): void {
    const words = this.#words;
    let state = Atomics.load(words, STATE);
    while ((state & SET) !== 0) {
      const seen = Atomics.compareExchange(words, STATE, state, state & ~SET);
      if (seen === state) return;
      state = seen;
    }
  }

  /**
   * Waits without blocking the thread until the flag is up.
   *
   * @param options `timeout` in milliseconds, and a `signal` to stop waiting.
   * @returns `true` when the flag is up or was raised while waiting, `false`
   *   when `timeout` passed first.
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is aborted: the signal's `reason` (by default a
   *   `DOMException` named `"AbortError"`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Event } from "@parallel/core";
   * const event = new Event();
   * assert.deepEqual(await event.wait({ timeout: 5 }), false);
   * ```
   */
  async wait(options?: WaitOptions): Promise<boolean> {
    const timeout = checkTimeout(options?.timeout, "Cannot wait on Event");
    options?.signal?.throwIfAborted();
    return await runAsync(this.#steps(new Deadline(timeout), options?.signal));
  }

  /**
   * Blocks the calling thread until the flag is up. Meant for threads: on the
   * main thread it freezes the event loop while it waits.
   *
   * @param options `timeout` in milliseconds; a `signal` is only checked
   *   before waiting, since a blocked thread cannot see it fire.
   * @returns `true` when the flag is up or was raised while waiting, `false`
   *   when `timeout` passed first.
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is already aborted: the signal's `reason`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Event } from "@parallel/core";
   * const event = new Event();
   * event.set();
   * assert.deepEqual(event.waitSync(), true);
   * ```
   */
  waitSync(options?: WaitOptions): boolean {
    const timeout = checkTimeout(options?.timeout, "Cannot wait on Event");
    options?.signal?.throwIfAborted();
    return runSync(this.#steps(new Deadline(timeout)));
  }

  /**
   * How a child process uses it through the broker.
   *
   * @ignore
   */
  get [remote](): RemoteSpec {
    return {
      direct: true,
      calls: { wait: ["options"], set: [], clear: [] },
      immediate: { isSet: "await event.wait({ timeout: 0 })" },
    };
  }

  /**
   * Describes this event for a thread: the same shared word.
   *
   * @ignore
   */
  [describe](context: DescribeContext): Descriptor {
    return {
      kind: "Event",
      module: import.meta.url,
      state: sharedState(context, this.#words.buffer, "Event"),
    };
  }

  *#steps(deadline: Deadline, signal?: AbortSignal): WaitSteps<boolean> {
    const words = this.#words;
    const seen = Atomics.load(words, STATE);
    if ((seen & SET) !== 0) return true;
    for (;;) {
      const timeout = deadline.remaining();
      if (timeout === 0) return false;
      const reason = yield { words, index: STATE, expected: seen, timeout, signal };
      if (reason === "aborted") throw abortReason(signal);
      if (Atomics.load(words, STATE) !== seen) return true;
    }
  }
}

registerReviver(
  "Event",
  (ref: SharedRef) => adopting(ref, () => new Event()),
);
