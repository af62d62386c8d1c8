/**
 * `Barrier`: Python's `threading.Barrier` over shared memory: a lock, a
 * condition variable and three words of state, all in one buffer.
 *
 * ```text
 *   Int32Array over 80 words of shared memory (`internal/memory.ts`)
 *   ┌─────────┬─────┬─────────┬─────────┬───────────┬───────────┬────────┬──────────┬──────────┬───────────┐
 *   │ 0 COUNT │ 1–4 │ 5 OWNER │ 6–8     │ 9 WAITING │10 SIGNALS │11 WAKE │ 12 PHASE │ 13 INSIDE│ 14 PARTIES│
 *   └─────────┴─────┴─────────┴─────────┴───────────┴───────────┴────────┴──────────┴──────────┴───────────┘
 *   16–79 PARTIES_IN: 32 slots of (pid, parties inside wait()) for child processes
 *   0–8   the barrier's lock (`_permits.ts`, a counter children use directly),
 *         guarding everything below; OWNER: the child holding it, if one does
 *   9–11  its condition variable (`_condvar.ts`)
 *   PHASE    FILLING (0): parties are arriving; DRAINING (1): all arrived,
 *            they are leaving; RESETTING (-1): reset() while some waited,
 *            they are leaving; BROKEN (-2)
 *   INSIDE   parties inside wait()
 *   PARTIES  how many parties the barrier waits for (fixed)
 * ```
 *
 * The algorithm is Python's. `wait` takes the lock, waits while the previous
 * round drains, and takes the index INSIDE (arrival order, 0 … PARTIES - 1).
 * The last party to arrive sets DRAINING and notifies everyone; the others
 * wait on the condition until PHASE leaves FILLING. Every party decrements
 * INSIDE on its way out; the last one out sets FILLING again, so a new round
 * cannot start until the previous one has fully left and no waiter can be
 * confused with a later round. A waiter whose timeout passes, or whose
 * signal aborts, breaks the barrier: PHASE = BROKEN and everyone waiting, and
 * every later `wait`, fails with `BrokenBarrierError` until `reset()`.
 *
 * The lock is held only between waits, never across one, and its release
 * grants it to any caller in line and wakes them all rather than handing it
 * to one sleeper, so `abort()` and `reset()` can take it synchronously even
 * on a thread whose own async `wait` is pending.
 *
 * Fairness: all parties are released together; there is no order to keep.
 *
 * A child process that maps this program's memory uses a barrier directly:
 * it takes the lock as children take any counter's permits (never joining
 * its line) and writes its pid into OWNER while it holds it, and counts its
 * parties inside `wait()` in a slot of its own. When such a child ends, the
 * parent, holding the lock (the child's hold, if it died holding it), takes
 * its parties out of INSIDE; if they were waiting in a round, that round
 * cannot complete and the barrier breaks: the others fail with
 * `BrokenBarrierError`, and `reset()` makes it usable again. A child killed
 * in the instant between taking the lock and writing its pid, between
 * clearing it and releasing, or between counting a party in INSIDE and in
 * its slot (either way), leaves the barrier wrong.
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
  runAsync,
  runSync,
  type WaitOptions,
  type WaitSteps,
} from "../internal/wait.ts";
import { isParents, type SharedRef } from "../internal/memory.ts";
import { BrokenBarrierError } from "../errors.ts";
import {
  conditionWaitSteps,
  CONDVAR_WORDS,
  type LockCore,
  notifyCondition,
  waitForSteps,
  WAITING,
} from "./_condvar.ts";
import {
  claimNow,
  claimSteps,
  COUNT,
  FOREVER,
  givePermit,
  OWNER,
  type Protocol,
  SHARED_PERMIT_WORDS,
  wakeEveryone,
} from "./_permits.ts";
import { adopting, adoption, checkCount, sharedState, sharedWords } from "./_shared.ts";
import { mendUnderLock, PID, slotOf, takeSlotsOf } from "./_holds.ts";

const CONDVAR = SHARED_PERMIT_WORDS;
const PHASE = CONDVAR + CONDVAR_WORDS;
const INSIDE = PHASE + 1;
const PARTIES = PHASE + 2;
/** The first slot of (pid, parties inside wait()) for a child process. */
const PARTIES_IN = 16;
/** How many child processes may wait on one barrier directly at once. */
const SLOTS = 32;
const WORDS = PARTIES_IN + 2 * SLOTS;

const FILLING = 0;
const DRAINING = 1;
const RESETTING = -1;
const BROKEN = -2;

/**
 * A meeting point for a fixed number of parties (Python's
 * `threading.Barrier`): each calls `wait()`, and all of them go on once the
 * last one arrives. The barrier then resets itself for the next round.
 *
 * @example Three callers meet
 * ```ts
 * import assert from "node:assert/strict";
 * import { Barrier } from "@parallel/core";
 *
 * const barrier = new Barrier(3);
 * const indexes = await Promise.all([barrier.wait(), barrier.wait(), barrier.wait()]);
 * assert.deepEqual(indexes.sort(), [0, 1, 2]);
 * ```
 */
export class Barrier {
  readonly #words: Int32Array;
  readonly #lock: LockCore;
  readonly #condvar: Int32Array;
  /** How this process takes the lock: in line, or outside it in a child that maps the memory. */
  readonly #protocol: Protocol;
  /** In a child: the word of its slot counting its parties inside `wait()`. */
  #partiesHere = -1;

  /**
   * Creates a barrier for `parties` parties.
   *
   * @param parties How many callers of `wait()` each round waits for: a whole
   *   number >= 1.
   * @throws {RangeError} When `parties` is below 1, not whole, or NaN.
   * @throws {TypeError} When `parties` is not a number.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Barrier } from "@parallel/core";
   * const barrier = new Barrier(4);
   * assert.deepEqual(barrier.parties, 4);
   * ```
   */
  constructor(parties: number) {
    const buffer = adoption();
    this.#protocol = buffer !== undefined && isParents(buffer) ? "child" : "parent";
    if (buffer) {
      this.#words = new Int32Array(buffer);
    } else {
      checkCount(parties, 1, "Cannot create Barrier", "parties");
      this.#words = sharedWords(WORDS);
      this.#words[COUNT] = 1;
      this.#words[PARTIES] = parties;
    }
    const lockWords = this.#words.subarray(0, SHARED_PERMIT_WORDS);
    this.#condvar = this.#words.subarray(CONDVAR, CONDVAR + CONDVAR_WORDS);
    this.#lock = {
      words: lockWords,
      protocol: this.#protocol,
      holds: () => Atomics.load(lockWords, COUNT) < 1,
      releaseAll: () => {
        this.#unlock();
        return 1;
      },
      restore: () => this.#owned(),
    };
  }

  /** How many parties each round waits for. */
  get parties(): number {
    return this.#words[PARTIES];
  }

  /** How many parties are waiting in the current round now. */
  get waiting(): number {
    return Atomics.load(this.#words, PHASE) === FILLING ? Atomics.load(this.#words, INSIDE) : 0;
  }

  /** Whether the barrier is broken (until `reset()`). */
  get broken(): boolean {
    return Atomics.load(this.#words, PHASE) === BROKEN;
  }

  /**
   * Waits without blocking the thread until all parties have called `wait`.
   *
   * @param options `timeout` in milliseconds, and a `signal` to stop waiting.
   *   Either one ending the wait breaks the barrier for everyone.
   * @returns This caller's index in the round, 0 … parties - 1, in order of
   *   arrival (the last to arrive gets parties - 1).
   * @throws {BrokenBarrierError} When the barrier is or becomes broken: by a
   *   timeout (this caller's or another's), an abort, `abort()` or `reset()`.
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is aborted: the signal's `reason`; the barrier is
   *   broken for the others.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Barrier } from "@parallel/core";
   * const barrier = new Barrier(1);
   * assert.deepEqual(await barrier.wait({ timeout: 1000 }), 0);
   * ```
   */
  async wait(options?: WaitOptions): Promise<number> {
    const timeout = checkTimeout(options?.timeout, "Cannot wait on Barrier");
    options?.signal?.throwIfAborted();
    return await runAsync(this.#steps(timeout, options?.signal));
  }

  /**
   * Blocks the calling thread until all parties have called `wait`. Meant
   * for threads: on the main thread it freezes the event loop while it waits.
   *
   * @param options `timeout` in milliseconds (passing it breaks the
   *   barrier); a `signal` is only checked before waiting.
   * @returns This caller's index in the round, 0 … parties - 1.
   * @throws {BrokenBarrierError} When the barrier is or becomes broken.
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is already aborted: the signal's `reason`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Barrier } from "@parallel/core";
   * const barrier = new Barrier(1);
   * assert.deepEqual(barrier.waitSync(), 0);
   * ```
   */
  waitSync(options?: WaitOptions): number {
    const timeout = checkTimeout(options?.timeout, "Cannot wait on Barrier");
    options?.signal?.throwIfAborted();
    return runSync(this.#steps(timeout));
  }

  /**
   * Breaks the barrier: every waiting party, and every later `wait`, fails
   * with `BrokenBarrierError` until `reset()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Barrier } from "@parallel/core";
   * const barrier = new Barrier(2);
   * barrier.abort();
   * assert.deepEqual(barrier.broken, true);
   * ```
   */
  abort(): void {
    this.#locked(() => this.#break());
  }

  /**
   * Returns the barrier to its empty state. Parties waiting now fail with
   * `BrokenBarrierError`; a broken barrier becomes usable again.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Barrier } from "@parallel/core";
   * const barrier = new Barrier(2);
   * barrier.abort();
   * barrier.reset();
   * assert.deepEqual(barrier.broken, false);
   * ```
   */
  reset(): void {
    this.#locked(() => {
      const words = this.#words;
      if (Atomics.load(words, INSIDE) > 0) {
        const phase = Atomics.load(words, PHASE);
        // Waiters fail; the last to leave sets FILLING.
        if (phase === FILLING || phase === BROKEN) Atomics.store(words, PHASE, RESETTING);
      } else {
        Atomics.store(words, PHASE, FILLING);
      }
      this.#notifyAll();
    });
  }

  /**
   * How a child process uses it through the broker.
   *
   * @ignore
   */
  get [remote](): RemoteSpec {
    return {
      direct: true,
      calls: { wait: ["options"], abort: [], reset: [] },
      constants: { parties: this.parties },
      immediate: {
        waiting: "a count of your own",
        broken: "the BrokenBarrierError from await barrier.wait()",
      },
      oneWay: ["abort", "reset"],
    };
  }

  /**
   * Describes this barrier for a thread: the same shared words.
   *
   * @ignore
   */
  [describe](context: DescribeContext): Descriptor {
    const buffer = this.#words.buffer;
    const state = sharedState(context, buffer, "Barrier", (pid) => this.#recoverFrom(pid));
    return { kind: "Barrier", module: import.meta.url, state };
  }

  *#steps(timeout: number, signal?: AbortSignal): WaitSteps<number> {
    const words = this.#words;
    const lock = this.#lock;
    const condvar = this.#condvar;
    yield* this.#lockSteps();
    try {
      // Wait while the previous round leaves or a reset completes.
      let phase = Atomics.load(words, PHASE);
      while (phase === DRAINING || phase === RESETTING) {
        yield* conditionWaitSteps(condvar, lock, FOREVER);
        phase = Atomics.load(words, PHASE);
      }
      if (phase === BROKEN) {
        throw new BrokenBarrierError("Cannot wait on Barrier: it is broken; reset() it first");
      }
      // The slot first: taking one may fail, and must fail before this party counts.
      const slot = this.#protocol === "child" ? this.#slot() : -1;
      const index = Atomics.add(words, INSIDE, 1);
      if (slot >= 0) Atomics.add(words, slot, 1);
      try {
        if (index + 1 === Atomics.load(words, PARTIES)) {
          Atomics.store(words, PHASE, DRAINING);
          this.#notifyAll();
          return index;
        }
        let released: boolean;
        try {
          released = yield* waitForSteps(
            condvar,
            lock,
            () => Atomics.load(words, PHASE) !== FILLING,
            new Deadline(timeout),
            signal,
          );
        } catch (abortReason) {
          this.#break();
          throw abortReason;
        }
        if (!released) {
          this.#break();
          throw new BrokenBarrierError(
            `Barrier.wait timed out after ${timeout} ms, which broke the barrier`,
          );
        }
        if (Atomics.load(words, PHASE) < 0) {
          throw new BrokenBarrierError(
            "Barrier was broken while waiting: a party timed out or was aborted, " +
              "or abort() or reset() was called",
          );
        }
        return index;
      } finally {
        if (slot >= 0) Atomics.sub(words, slot, 1);
        // The last party out lets the next round in.
        const inside = Atomics.sub(words, INSIDE, 1) - 1;
        const phase = Atomics.load(words, PHASE);
        if (inside === 0 && (phase === DRAINING || phase === RESETTING)) {
          Atomics.store(words, PHASE, FILLING);
          this.#notifyAll();
        }
      }
    } finally {
      this.#unlock();
    }
  }

  /** Runs `action` holding the barrier's lock; blocks only for another thread's brief hold. */
  #locked(action: () => void): void {
    runSync(this.#lockSteps());
    try {
      action();
    } finally {
      this.#unlock();
    }
  }

  /** Takes the barrier's lock (held only between waits, so never for long). */
  *#lockSteps(): WaitSteps<void> {
    const words = this.#lock.words;
    if (!claimNow(words, this.#protocol)) {
      yield* claimSteps(words, FOREVER, undefined, this.#protocol);
    }
    this.#owned();
  }

  /** Writes this child's pid into OWNER: the parent releases the lock if the child dies with it. */
  #owned(): void {
    if (this.#protocol === "child") this.#lock.words[OWNER] = PID;
  }

  /**
   * Releases the lock to any caller in line, waking them all (see above), or,
   * from a child, in one atomic step.
   */
  #unlock(): void {
    const words = this.#lock.words;
    if (this.#protocol === "child") words[OWNER] = 0;
    givePermit(words, 1, this.#protocol, 0, false);
  }

  /** In a child: the word of its slot counting its parties inside `wait()`, taken on first use. */
  #slot(): number {
    if (this.#partiesHere < 0) {
      this.#partiesHere = slotOf(this.#words, PARTIES_IN, SLOTS, "Barrier");
    }
    return this.#partiesHere;
  }

  /**
   * The parent's part when child process `pid` has ended: takes its parties
   * inside `wait()` out of INSIDE, holding the barrier's lock (the dead
   * child's hold, if it died holding it). A round they were waiting in
   * cannot complete: it breaks. One they were leaving goes on, and if they
   * were the last out, the next round may begin. (The dead parties stay
   * counted in the condition's WAITING: a notify grants them signals nobody
   * takes, which wake nobody wrongly, since a party looks at PHASE again.)
   */
  #recoverFrom(pid: number): void {
    const words = this.#words;
    const lockWords = this.#lock.words;
    const held = lockWords[OWNER] === pid && Atomics.load(lockWords, COUNT) < 1;
    if (held) lockWords[OWNER] = 0;
    const parties = takeSlotsOf(words, PARTIES_IN, SLOTS, pid);
    // Whoever waits for the lock looks again: the child may have died giving it.
    wakeEveryone(lockWords);
    if (!held && parties === 0) return;
    mendUnderLock(lockWords, held, () => {
      if (parties === 0) return;
      const inside = Atomics.sub(words, INSIDE, parties) - parties;
      const phase = Atomics.load(words, PHASE);
      if (phase === FILLING) {
        this.#break();
      } else if (inside === 0 && (phase === DRAINING || phase === RESETTING)) {
        Atomics.store(words, PHASE, FILLING);
        this.#notifyAll();
      }
    }, () => this.#unlock());
  }

  #break(): void {
    Atomics.store(this.#words, PHASE, BROKEN);
    this.#notifyAll();
  }

  #notifyAll(): void {
    notifyCondition(this.#condvar, Atomics.load(this.#condvar, WAITING));
  }
}

registerReviver(
  "Barrier",
  (ref: SharedRef) => adopting(ref, () => new Barrier(1)),
);
