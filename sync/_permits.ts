/**
 * The permit counter under `Mutex`, `ReentrantMutex`, `Semaphore`,
 * `BoundedSemaphore` and the lock inside `Barrier`: a counting semaphore in
 * four shared words whose count goes below zero to count the callers in
 * line, with permits handed directly to them.
 *
 * ```text
 *   Int32Array (the first six words of the primitive's shared memory)
 *   ┌───────────┬───────────┬───────────┬───────────┬───────────┬───────────┐
 *   │ 0 COUNT   │ 1 GRANTED │ 2 OPEN    │ 3 WAKE    │ 4 DIED    │ 5 OWNER   │
 *   └───────────┴───────────┴───────────┴───────────┴───────────┴───────────┘
 *   COUNT    > 0: free permits; < 0: minus the callers in line that no
 *            release has granted a permit yet
 *   GRANTED  permits granted to the line and reserved for a waiter that
 *            the release woke: only a waiter woken from sleep takes one
 *   OPEN     permits granted to the line that any caller in line takes
 *   WAKE     a sequence number; callers in line sleep on it, grants bump it
 *   DIED     non-zero once a holder died and its permit was given back for
 *            it; the next lease says so (`previousOwnerDied`) and clears it
 *   OWNER    a Mutex's holder: its process's pid (unused by the others)
 * ```
 *
 * Taking: compareExchange COUNT from n to n - 1 while n > 0; for a `Mutex`,
 * one compareExchange from 1 to 0. A caller that finds no permit joins the
 * line by subtracting one from COUNT (taking a permit after all if the old
 * value was positive), then reads WAKE, looks for a grant, and sleeps on
 * WAKE with the value it read: a grant made after that read changes WAKE, so
 * no wake-up is lost. `acquireSync` first spins (200 looks with
 * `Atomics.pause`, about 10 µs here) before it joins the line; nothing else
 * spins.
 *
 * Releasing: compareExchange COUNT from n to n + 1 (refused at the
 * primitive's limit: 1 for a mutex, the start for a bounded semaphore). If n
 * was below zero, someone in line is owed the permit: GRANTED + 1, WAKE + 1,
 * and `notify(…, 1)` wakes the caller that has slept longest. If
 * nobody was asleep to wake (the callers in line are between looks), the
 * grant moves to OPEN and WAKE is bumped again, so they find it. Uncontended,
 * a lock and an unlock are one compareExchange each, as for a bare spin lock.
 *
 * Giving up (timeout, abort): a caller leaves the line by adding one back to
 * COUNT while it is below zero. If it is not, every caller in line has been
 * granted a permit, this one included, so it takes its grant instead (a
 * timed-out acquire then succeeds at its deadline; an aborted one gives the
 * permit back). A caller woken for a grant that it then abandons moves one
 * grant from GRANTED to OPEN, so no grant is stranded.
 *
 * Fairness. Nobody overtakes the line: while anyone is in line COUNT is not
 * positive, so newcomers, `tryAcquire` and spinners find no permit and must
 * join it. Each release grants its permit to the line, reserved for the
 * caller that `notify` wakes, which is the one that has slept longest (the
 * ECMAScript waiter list is FIFO; so is the futex queue among threads of
 * equal priority). So callers that sleep are served first come, first
 * served, and none waits while later arrivals are served, with exceptions
 * that reorder the line without stalling it: an async wait that is aborted
 * wakes every sleeper of the primitive (`internal/wait.ts` must, to unhook
 * its own wait), and those race for the next grant; a woken caller that
 * loses such a race sleeps again at the back (`Atomics` cannot queue at the
 * front); and on mapped memory a caller that has slept a whole futex slice
 * (a second) sleeps again at the back. Callers in line that have not slept
 * yet take a grant only when nobody was asleep to receive it.

 *
 * @module
 */

import {
  checkTimeout,
  Deadline,
  notify,
  runAsync,
  runSync,
  type WaitOptions,
} from "../internal/wait.ts";
import type { WaitSteps } from "../internal/wait.ts";
import { abortReason, timedOut } from "./_shared.ts";

/** Free permits, or minus the callers in line not yet granted one. */
export const COUNT = 0;
/** Grants reserved for a woken caller. */
export const GRANTED = 1;
/** Grants any caller in line may take. */
export const OPEN = 2;
/** The sequence number callers in line sleep on. */
export const WAKE = 3;
/** Set when a holder that died was released for: the next lease reads and clears it. */
export const DIED = 4;
/** A `Mutex`'s holder: its process's pid, for a parent to release a dead child's lock (`_holds.ts`). */
export const OWNER = 5;
/** How many words the permit counter takes (what follows stays 8-byte aligned). */
export const PERMIT_WORDS = 6;
/** How many times `acquireSync` looks again before it joins the line. */
const SPINS = 200;

/** A deadline that never passes. */
export const FOREVER: Deadline = new Deadline(Infinity);

/** Takes one from `words[index]` if it is positive. */
export function takeOne(words: Int32Array, index: number): boolean {
  let count = Atomics.load(words, index);
  while (count > 0) {
    const seen = Atomics.compareExchange(words, index, count, count - 1);
    if (seen === count) return true;
    count = seen;
  }
  return false;
}

/**
 * Takes a free permit without waiting. `guess` is the count to try first
 * (a mutex passes 1, saving a load).
 */
export function takeFree(words: Int32Array, guess: number = Atomics.load(words, COUNT)): boolean {
  let count = guess;
  while (count > 0) {
    const seen = Atomics.compareExchange(words, COUNT, count, count - 1);
    if (seen === count) return true;
    count = seen;
  }
  return false;
}

/**
 * Gives a permit back, unless the count is already `limit` (then returns
 * `false` and changes nothing). `guess` is the count to try first (a mutex
 * passes 0). `handOff: false` grants to any caller in line and wakes them
 * all: for a lock that a thread may take synchronously while its own async
 * waiter is pending, which a reserved grant could deadlock.
 */
export function releasePermit(
  words: Int32Array,
  limit: number,
  guess: number = Atomics.load(words, COUNT),
  handOff = true,
): boolean {
  let count = guess;
  for (;;) {
    if (count >= limit) return false;
    const seen = Atomics.compareExchange(words, COUNT, count, count + 1);
    if (seen === count) break;
    count = seen;
  }
  if (count < 0) grant(words, handOff);
  return true;
}

/** Hands a permit to the line. */
function grant(words: Int32Array, handOff: boolean): void {
  if (!handOff) {
    Atomics.add(words, OPEN, 1);
    Atomics.add(words, WAKE, 1);
    notify(words, WAKE);
    return;
  }
  Atomics.add(words, GRANTED, 1);
  Atomics.add(words, WAKE, 1);
  if (notify(words, WAKE, 1) === 0) openGrant(words);
}

/** Moves one reserved grant to OPEN and tells the line to look again. */
function openGrant(words: Int32Array): void {
  if (!takeOne(words, GRANTED)) return;
  Atomics.add(words, OPEN, 1);
  Atomics.add(words, WAKE, 1);
  notify(words, WAKE, 1);
}

/**
 * Looks for a free permit for a while before a blocking caller joins the
 * line. A thread that just handed the permit to a sleeper usually finds it
 * free again once that sleeper is done; without this, two threads trading a
 * lock fall into a convoy where every hand-off costs a futex wake-up
 * (measured: 10x slower with a 2 µs spin).
 */
function spin(words: Int32Array): boolean {
  for (let i = 0; i < SPINS; i++) {
    Atomics.pause();
    if (Atomics.load(words, COUNT) > 0 && takeFree(words)) return true;
  }
  return false;
}

/**
 * The slow path of taking a permit: joins the line and waits for a grant
 * (or, with `loose`, a {@linkcode LOOSE} permit: a counter children use
 * directly, whose children waiting outside the line are told of a permit a
 * caller leaves free as it gives up). Returns `true` once it holds a permit,
 * `false` when the deadline passes first; throws the signal's reason on
 * abort.
 */
export function* acquireSteps(
  words: Int32Array,
  deadline: Deadline,
  signal?: AbortSignal,
  loose = false,
): WaitSteps<boolean> {
  if (deadline.remaining() === 0) return takeFree(words);
  if (Atomics.sub(words, COUNT, 1) > 0) return true;
  let woken = false;
  for (;;) {
    const seen = Atomics.load(words, WAKE);
    if ((woken && takeOne(words, GRANTED)) || takeOne(words, OPEN)) return true;
    if (loose && takeOne(words, LOOSE)) {
      // Out of the line with it; a grant that came meanwhile goes back.
      if (yield* leaveLine(words)) {
        releasePermit(words, Infinity);
        signalOutside(words);
      }
      return true;
    }
    const timeout = deadline.remaining();
    if (timeout === 0) {
      const granted = yield* leaveLine(words);
      // A LOOSE permit may be left with nobody in line: children waiting outside it look.
      if (!granted && loose) settleLoose(words);
      return granted;
    }
    const reason = yield { words, index: WAKE, expected: seen, timeout, signal };
    if (reason === "ok") {
      woken = true;
    } else if (reason === "aborted") {
      // A release may have woken this caller just before the abort.
      if (Atomics.load(words, GRANTED) > 0) openGrant(words);
      if (yield* leaveLine(words)) releasePermit(words, Infinity);
      // That permit, or a LOOSE one left with nobody in line: children outside it look.
      if (loose) settleLoose(words);
      throw abortReason(signal);
    }
  }
}

/**
 * Leaves the line. Returns `false` when it left without a permit, `true`
 * when a permit had already been granted to it and it took that instead.
 */
function* leaveLine(words: Int32Array): WaitSteps<boolean> {
  let count = Atomics.load(words, COUNT);
  while (count < 0) {
    const seen = Atomics.compareExchange(words, COUNT, count, count + 1);
    if (seen === count) return false;
    count = seen;
  }
  // Every caller in line has a grant, this one too: it may be a moment away.
  for (;;) {
    const seen = Atomics.load(words, WAKE);
    if (takeOne(words, GRANTED) || takeOne(words, OPEN)) return true;
    yield { words, index: WAKE, expected: seen, timeout: Infinity };
  }
}

/**
 * How a caller takes a counter's permits: `"line"`, a counter only this
 * process uses; `"parent"`, one that children use directly too, in the
 * process that made it; `"child"`, the same in such a child (see "counters a
 * child process uses directly" below).
 */
export type Protocol = "line" | "parent" | "child";

/** Takes a free permit without waiting, as `protocol` does. */
export function claimNow(words: Int32Array, protocol: Protocol): boolean {
  return protocol === "line" ? takeFree(words) : claimFree(words);
}

/**
 * The slow path of taking a permit as `protocol` does: in line, or, in a
 * child, outside it. `true` once it holds one, `false` when the deadline
 * passes first; throws the signal's reason on abort.
 */
export function* claimSteps(
  words: Int32Array,
  deadline: Deadline,
  signal: AbortSignal | undefined,
  protocol: Protocol,
): WaitSteps<boolean> {
  if (protocol !== "child") {
    return yield* acquireSteps(words, deadline, signal, protocol === "parent");
  }
  const claimed = () => claimFree(words) || NONE;
  return (yield* waitOutsideSteps(words, claimed, deadline, signal)) !== NONE;
}

/**
 * `acquire()` for every permit-based primitive: resolves once it holds a
 * permit; rejects with `TimeoutError`, the signal's reason, or a
 * `RangeError` for a bad timeout.
 */
export async function acquirePermit(
  words: Int32Array,
  options: WaitOptions | undefined,
  name: string,
  protocol: Protocol = "line",
): Promise<void> {
  const timeout = checkTimeout(options?.timeout, `Cannot acquire ${name}`);
  const signal = options?.signal;
  signal?.throwIfAborted();
  if (claimNow(words, protocol)) return;
  const deadline = new Deadline(timeout);
  const steps = protocol === "child"
    ? claimSteps(words, deadline, signal, protocol)
    : acquireSteps(words, deadline, signal, protocol === "parent");
  if (!await runAsync(steps)) throw timedOut(`${name}.acquire()`, timeout);
}

/**
 * `acquireSync()` for every permit-based primitive: blocks until it holds a
 * permit. `guess` as for {@linkcode takeFree}.
 */
export function acquirePermitSync(
  words: Int32Array,
  options: WaitOptions | undefined,
  name: string,
  guess?: number,
  protocol: Protocol = "line",
): void {
  let timeout = Infinity;
  if (options !== undefined) {
    timeout = checkTimeout(options.timeout, `Cannot acquire ${name}`);
    options.signal?.throwIfAborted();
  }
  // A LOOSE permit is taken in line (below) or, in a child, outside it.
  const free = protocol === "child" ? claimFree(words) : takeFree(words, guess);
  if (free || (timeout > 0 && spin(words))) return;
  const deadline = new Deadline(timeout);
  const steps = protocol === "child"
    ? claimSteps(words, deadline, undefined, protocol)
    : acquireSteps(words, deadline, undefined, protocol === "parent");
  if (!runSync(steps)) throw timedOut(`${name}.acquireSync()`, timeout);
}

// ---- counters a child process uses directly ---------------------------------
//
// A child process that maps this program's memory can be killed at any instruction. A caller
// in line that dies cannot be taken out of it, and handing a permit to the line takes several
// steps (a child killed among them would leave a caller in line that no grant reaches). So a
// counter that children use directly (a queue's, a semaphore's) has three more words, and a
// child never joins its line: it takes a permit only when one is free ({@linkcode claimFree}),
// waits outside the line while none is ({@linkcode waitOutsideSteps}), and gives one in a
// single atomic step ({@linkcode giveFromChild}): free when nobody waits in line, else LOOSE,
// which a caller in line takes, leaving the line with it. A child is so served after the
// callers in line. Callers in this process claim with {@linkcode claimSteps} and tell
// the children outside ({@linkcode signalOutside}) whenever a permit may have come free.

/**
 * Permits a child gave while callers waited in line: a caller in line takes
 * one and leaves the line with it; when nobody is in line, any caller may.
 */
export const LOOSE = 6;
/** Bumped when a permit may have come free while children wait outside the line. */
export const OUTSIDE_SEQ = 7;
/** Children's calls waiting for a permit outside the line. */
export const OUTSIDE = 8;
/** How many words a counter that children use directly takes. */
export const SHARED_PERMIT_WORDS = 9;

/** What {@linkcode waitOutsideSteps}'s `attempt` returns while it found nothing. */
export const NONE: unique symbol = Symbol("none");

/**
 * Takes a free permit of a counter children use: one counted free, or, when
 * nobody waits in line, a LOOSE one.
 */
export function claimFree(words: Int32Array): boolean {
  return takeFree(words) ||
    (Atomics.load(words, COUNT) >= 0 && Atomics.load(words, LOOSE) > 0 && takeOne(words, LOOSE));
}

/**
 * A child's give of a permit, in one atomic step: free when nobody waits in
 * line (refused, `false`, at `limit`), else LOOSE, for a caller in line.
 */
export function giveFromChild(words: Int32Array, limit = Infinity): boolean {
  let count = Atomics.load(words, COUNT);
  while (count >= 0) {
    // LOOSE permits left with nobody in line are free ones too.
    if (count + Atomics.load(words, LOOSE) >= limit) return false;
    const seen = Atomics.compareExchange(words, COUNT, count, count + 1);
    if (seen === count) {
      signalOutside(words);
      return true;
    }
    count = seen;
  }
  Atomics.add(words, LOOSE, 1);
  Atomics.add(words, WAKE, 1);
  notify(words, WAKE);
  // The line may have emptied since COUNT was read: children outside look too.
  signalOutside(words);
  return true;
}

/**
 * Gives a permit of a counter children use back, as `protocol` does: in a
 * child in one atomic step ({@linkcode giveFromChild}); here, LOOSE permits
 * nobody in line is owed counted first, then through the line
 * ({@linkcode releasePermit}: `guess`, `handOff`), telling the children
 * outside. `false`, changing nothing, when the count is at `limit`.
 */
export function givePermit(
  words: Int32Array,
  limit: number,
  protocol: Protocol,
  guess?: number,
  handOff = true,
): boolean {
  if (protocol === "child") return giveFromChild(words, limit);
  if (words[LOOSE] !== 0) settleLoose(words);
  if (!releasePermit(words, limit, guess ?? Atomics.load(words, COUNT), handOff)) return false;
  // (One plain read when no child waits: this is every unlock's path.)
  if (words[OUTSIDE] !== 0) signalOutside(words);
  return true;
}

/**
 * In this process (never in a child: it takes several steps): LOOSE permits
 * that nobody in line is owed (the line emptied before a caller took them)
 * become free ones, and children waiting outside the line look.
 */
export function settleLoose(words: Int32Array): void {
  while (Atomics.load(words, COUNT) >= 0 && takeOne(words, LOOSE)) releasePermit(words, Infinity);
  signalOutside(words);
}

/** Wakes one child's call waiting outside the line, if any: a permit may be free. */
export function signalOutside(words: Int32Array): void {
  if (Atomics.load(words, OUTSIDE) > 0) {
    Atomics.add(words, OUTSIDE_SEQ, 1);
    notify(words, OUTSIDE_SEQ, 1);
  }
}

/** Wakes every caller waiting on the counter, in line and outside it, to look again. */
export function wakeEveryone(words: Int32Array): void {
  Atomics.add(words, WAKE, 1);
  notify(words, WAKE);
  Atomics.add(words, OUTSIDE_SEQ, 1);
  notify(words, OUTSIDE_SEQ);
}

/**
 * A child's wait: calls `attempt` until it returns something other than
 * {@linkcode NONE}, sleeping outside the line in between; {@linkcode NONE}
 * when `deadline` passes first. Throws the signal's reason on abort.
 */
export function* waitOutsideSteps<T>(
  words: Int32Array,
  attempt: () => T | typeof NONE,
  deadline: Deadline,
  signal?: AbortSignal,
): WaitSteps<T | typeof NONE> {
  Atomics.add(words, OUTSIDE, 1);
  let found = false;
  try {
    for (;;) {
      const seen = Atomics.load(words, OUTSIDE_SEQ);
      const got = attempt();
      if (got !== NONE) {
        found = true;
        return got;
      }
      const timeout = deadline.remaining();
      if (timeout === 0) return NONE;
      const reason = yield { words, index: OUTSIDE_SEQ, expected: seen, timeout, signal };
      if (reason === "aborted") throw abortReason(signal);
    }
  } finally {
    Atomics.sub(words, OUTSIDE, 1);
    // Another child may have been woken for a permit this one no longer waits for.
    if (!found) signalOutside(words);
  }
}
