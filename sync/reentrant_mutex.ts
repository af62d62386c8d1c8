/**
 * `ReentrantMutex`: Python's `threading.RLock` over shared memory.
 *
 * ```text
 *   Int32Array over 10 words of shared memory (`internal/memory.ts`)
 *   ┌─────────┬───────────┬────────┬────────┬────────┬───┬─────────┬────────────┬──────────────────────┐
 *   │ 0 COUNT │ 1 GRANTED │ 2 OPEN │ 3 WAKE │ 4 DIED │ 5 │ 6 DEPTH │ 7 OWNER_ID │ 8–9 OWNER (BigInt64) │
 *   └─────────┴───────────┴────────┴────────┴────────┴───┴─────────┴────────────┴──────────────────────┘
 *   COUNT … 5    the permit counter of `_permits.ts`, with one permit
 *                (the Mutex layout: COUNT is 1 when unlocked)
 *   DEPTH        how many times the owner has acquired it without releasing
 *   OWNER_ID     the owner's `currentThread().id` (for error messages only)
 *   OWNER        the owner's thread tag (`_thread_tag.ts`); 0 when unowned
 * ```
 *
 * The owner acquires again by adding to DEPTH, without touching the permit.
 * Anyone else takes the permit as with a `Mutex`, then writes OWNER,
 * OWNER_ID and DEPTH = 1. Only the holder of the permit writes these words,
 * and it clears OWNER before it gives the permit back, so a thread that reads
 * its own tag in OWNER holds the mutex: no other thread can put it there.
 *
 * A thread is one isolate: the main thread counts as one, each worker as
 * one. Ownership is per thread, not per async call chain: two async
 * functions on the same thread share it, as two Python coroutines on one
 * thread share an `RLock`. Use a `Mutex` to keep async code on one thread
 * apart.
 *
 * Fairness is the `Mutex`'s (see `_permits.ts`): waiters that sleep are
 * served in the order they went to sleep.
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
import type { WaitOptions } from "../internal/wait.ts";
import type { SharedRef } from "../internal/memory.ts";
import { currentThread } from "../tasks.ts";
import { lockCores } from "./_condvar.ts";
import {
  acquirePermit,
  acquirePermitSync,
  COUNT,
  PERMIT_WORDS,
  releasePermit,
  takeFree,
} from "./_permits.ts";
import { adopting, adoption, type Lease, leaseFor, sharedState, sharedWords } from "./_shared.ts";
import { threadTag } from "./_thread_tag.ts";

/** Acquisitions by the owner not yet released. */
const DEPTH = PERMIT_WORDS;
/** The owner's public thread id, for messages. */
const OWNER_ID = PERMIT_WORDS + 1;
/** The owner's tag, as an index into a BigInt64Array over the same buffer. */
const OWNER = (PERMIT_WORDS + 2) / 2;
const WORDS = PERMIT_WORDS + 4;

/**
 * A lock that the thread holding it may acquire again (Python's
 * `threading.RLock`); it is released when every acquire has been matched by a
 * release. Only the owning thread may release it. The main thread counts as
 * one thread, each worker as another.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ReentrantMutex } from "@parallel/core";
 *
 * const mutex = new ReentrantMutex();
 * using _outer = await mutex.acquire();
 * using _inner = await mutex.acquire(); // the same thread: no deadlock
 * assert.deepEqual(mutex.locked, true);
 * ```
 */
export class ReentrantMutex {
  readonly #words: Int32Array;
  readonly #owner: BigInt64Array;

  /**
   * Creates an unlocked reentrant mutex.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ReentrantMutex } from "@parallel/core";
   * const mutex = new ReentrantMutex();
   * assert.deepEqual(mutex.locked, false);
   * ```
   */
  constructor() {
    const buffer = adoption();
    this.#words = buffer ? new Int32Array(buffer) : sharedWords(WORDS);
    if (!buffer) this.#words[COUNT] = 1;
    this.#owner = new BigInt64Array(this.#words.buffer);
    lockCores.set(this, {
      words: this.#words,
      protocol: "line",
      holds: () => this.#ownedHere(),
      releaseAll: () => {
        const depth = Atomics.load(this.#words, DEPTH);
        Atomics.store(this.#words, DEPTH, 1);
        this.release();
        return depth;
      },
      restore: (depth) => {
        this.#own();
        Atomics.store(this.#words, DEPTH, depth);
      },
    });
  }

  /** Whether any thread holds the mutex now. */
  get locked(): boolean {
    return Atomics.load(this.#words, COUNT) < 1;
  }

  /**
   * Waits for the mutex without blocking the thread and acquires it; at once
   * if this thread already holds it.
   *
   * @param options `timeout` in milliseconds, and a `signal` to stop waiting.
   * @returns A lease; disposing it (or calling `release()`) releases one level.
   * @throws {TimeoutError} When `timeout` passes first (the promise rejects).
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is aborted: the signal's `reason` (by default a
   *   `DOMException` named `"AbortError"`).
   *
   * @example
   * ```ts
   * import { ReentrantMutex } from "@parallel/core";
   * const mutex = new ReentrantMutex();
   * using _lock = await mutex.acquire({ timeout: 1000 });
   * ```
   */
  async acquire(options?: WaitOptions): Promise<Lease> {
    if (!this.#reenter()) {
      await acquirePermit(this.#words, options, "ReentrantMutex");
      this.#own();
    }
    return leaseFor(this, this.#words);
  }

  /**
   * Blocks the calling thread until it acquires the mutex; at once if this
   * thread already holds it. Meant for threads: on the main thread it freezes
   * the event loop while it waits.
   *
   * @param options `timeout` in milliseconds; a `signal` is only checked
   *   before waiting, since a blocked thread cannot see it fire.
   * @returns A lease; disposing it (or calling `release()`) releases one level.
   * @throws {TimeoutError} When `timeout` passes first.
   * @throws {RangeError} When `timeout` is negative or not a number.
   * @throws When `signal` is already aborted: the signal's `reason`.
   *
   * @example
   * ```ts
   * import { ReentrantMutex } from "@parallel/core";
   * const mutex = new ReentrantMutex();
   * using _lock = mutex.acquireSync();
   * ```
   */
  acquireSync(options?: WaitOptions): Lease {
    if (!this.#reenter()) {
      acquirePermitSync(this.#words, options, "ReentrantMutex", 1);
      this.#own();
    }
    return leaseFor(this, this.#words);
  }

  /**
   * Acquires the mutex if this thread holds it or nobody does, without
   * waiting.
   *
   * @returns A lease, or `undefined` when another thread holds the mutex.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ReentrantMutex } from "@parallel/core";
   * const mutex = new ReentrantMutex();
   * const outer = mutex.tryAcquire();
   * const inner = mutex.tryAcquire(); // the same thread may acquire again
   * assert.ok(outer !== undefined && inner !== undefined);
   * ```
   */
  tryAcquire(): Lease | undefined {
    if (!this.#reenter()) {
      if (!takeFree(this.#words, 1)) return undefined;
      this.#own();
    }
    return leaseFor(this, this.#words);
  }

  /**
   * Releases one level; the mutex is unlocked when every acquire has been
   * released.
   *
   * @throws {Error} When this thread does not hold the mutex (another thread
   *   does, or nobody does); it stays as it was.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ReentrantMutex } from "@parallel/core";
   * const mutex = new ReentrantMutex();
   * await mutex.acquire();
   * await mutex.acquire();
   * mutex.release();
   * mutex.release();
   * assert.deepEqual(mutex.locked, false);
   * ```
   */
  release(): void {
    if (!this.#ownedHere()) {
      const here = currentThread();
      const owner = Atomics.load(this.#owner, OWNER) === 0n
        ? "it is not locked"
        : `it is held by another thread (id ${Atomics.load(this.#words, OWNER_ID)})`;
      throw new Error(
        `Cannot release ReentrantMutex: ${owner}, not by this thread ` +
          `(${here.name}, id ${here.id})`,
      );
    }
    const depth = Atomics.sub(this.#words, DEPTH, 1) - 1;
    if (depth > 0) return;
    Atomics.store(this.#words, OWNER_ID, 0);
    Atomics.store(this.#owner, OWNER, 0n);
    releasePermit(this.#words, 1, 0);
  }

  /**
   * How a child process uses it through the broker.
   *
   * @ignore
   */
  get [remote](): RemoteSpec {
    return {
      localOnly:
        "a ReentrantMutex is owned by a thread, and a child's calls all run on its parent's thread: pass a Mutex instead",
    };
  }

  /**
   * Describes this mutex for a thread: the same shared words.
   *
   * @ignore
   */
  [describe](context: DescribeContext): Descriptor {
    return {
      kind: "ReentrantMutex",
      module: import.meta.url,
      state: sharedState(context, this.#words.buffer, "ReentrantMutex"),
    };
  }

  #ownedHere(): boolean {
    return Atomics.load(this.#owner, OWNER) === threadTag();
  }

  /** Acquires again if this thread is the owner. */
  #reenter(): boolean {
    if (!this.#ownedHere()) return false;
    Atomics.add(this.#words, DEPTH, 1);
    return true;
  }

  /** Records this thread as the owner, after taking the permit. */
  #own(): void {
    Atomics.store(this.#owner, OWNER, threadTag());
    Atomics.store(this.#words, OWNER_ID, currentThread().id);
    Atomics.store(this.#words, DEPTH, 1);
  }
}

registerReviver(
  "ReentrantMutex",
  (ref: SharedRef) => adopting(ref, () => new ReentrantMutex()),
);
