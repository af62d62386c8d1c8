// The permit counters that child processes use directly (sync/_permits.ts, "counters a child
// process uses directly"), driven step by step in one thread: a child's give (giveFromChild), a
// child waiting outside the line (claimSteps "child"), and callers in line (acquireSteps with
// loose), with a patched Atomics function to land one step between two of another.
import assert from "node:assert/strict";
import { Mutex } from "../mod.ts";
import {
  acquireSteps,
  claimFree,
  claimSteps,
  COUNT,
  FOREVER,
  giveFromChild,
  LOOSE,
  OUTSIDE,
  OUTSIDE_SEQ,
  releasePermit,
  SHARED_PERMIT_WORDS,
  signalOutside,
} from "../sync/_permits.ts";
import { describe, type Shareable } from "../internal/codec.ts";
import { bufferOf, type SharedRef } from "../internal/memory.ts";

/** A counter children use directly, with `count` free permits. */
function counter(count: number): Int32Array {
  const words = new Int32Array(new SharedArrayBuffer(4 * SHARED_PERMIT_WORDS));
  words[COUNT] = count;
  return words;
}

/** The shared words of `mutex`. */
function wordsOf(mutex: Mutex): Int32Array {
  const state = (mutex as unknown as Shareable)[describe]({ transport: "thread" }).state;
  return new Int32Array(bufferOf(state as SharedRef));
}

/** What a wait step asks for. */
type Wait = { expected: number };

Deno.test("a LOOSE permit left with nobody in line is free: the mutex is not locked, one release fails", () => {
  const mutex = new Mutex();
  const words = wordsOf(mutex);
  mutex.tryAcquire(); // as a child's hold: COUNT 0
  const waiting = acquireSteps(words, FOREVER, undefined, true);
  waiting.next(); // a caller in line: COUNT -1
  giveFromChild(words, 1); // the child unlocks: a LOOSE permit, for the caller in line
  assert.throws(() => waiting.next("aborted")); // whose abort came before it looked
  assert.equal(mutex.locked, false);
  assert.throws(() => mutex.release(), /not locked/);
  const lease = mutex.tryAcquire();
  assert.ok(lease !== undefined);
  assert.equal(mutex.tryAcquire(), undefined);
});

Deno.test("a child's unlock that lands after the line emptied leaves the mutex free: one release fails", () => {
  const mutex = new Mutex();
  const words = wordsOf(mutex);
  mutex.tryAcquire(); // as a child's hold: COUNT 0
  const controller = new AbortController();
  const waiting = acquireSteps(words, FOREVER, controller.signal, true);
  waiting.next(); // a caller in line: COUNT -1
  const add = Atomics.add;
  // The child read COUNT -1; before its LOOSE permit lands, the caller in line gives up.
  Atomics.add = ((array: Int32Array, index: number, value: number) => {
    if (array === words && index === LOOSE) {
      Atomics.add = add;
      controller.abort();
      assert.throws(() => waiting.next("aborted"));
    }
    return add(array, index, value);
  }) as typeof Atomics.add;
  try {
    giveFromChild(words, 1);
  } finally {
    Atomics.add = add;
  }
  assert.equal(words[LOOSE], 1, "a LOOSE permit with nobody in line");
  assert.equal(mutex.locked, false);
  assert.throws(() => mutex.release(), /not locked/);
  const lease = mutex.tryAcquire();
  assert.ok(lease !== undefined);
  assert.equal(mutex.tryAcquire(), undefined);
});

Deno.test("a caller that takes a LOOSE permit and finds a grant too gives it back and wakes a child", () => {
  const words = counter(0);
  const inLine = acquireSteps(words, FOREVER, undefined, true);
  inLine.next(); // in line: COUNT -1
  const child = claimSteps(words, FOREVER, undefined, "child");
  let childWait = child.next().value as Wait; // a child waiting outside the line
  giveFromChild(words); // another child gives: LOOSE
  const load = Atomics.load;
  let landed = false;
  // A release in this process lands between the caller's take of LOOSE and its leaving the
  // line; the child looks meanwhile, finds nothing free, and sleeps again.
  Atomics.load = ((array: Int32Array, index: number) => {
    if (
      !landed && array === words && index === COUNT && array[LOOSE] === 0 && array[COUNT] === -1
    ) {
      landed = true;
      releasePermit(words, Infinity);
      signalOutside(words);
      childWait = child.next("ok").value as Wait;
    }
    return load(array, index);
  }) as typeof Atomics.load;
  try {
    assert.equal(inLine.next("ok").done, true);
  } finally {
    Atomics.load = load;
  }
  assert.equal(landed, true);
  assert.equal(words[COUNT], 1, "the grant came back free");
  assert.notEqual(childWait.expected, words[OUTSIDE_SEQ], "the child was told");
});

Deno.test("a child's LOOSE give that lands after the line emptied wakes a child waiting outside", () => {
  const words = counter(0);
  const controller = new AbortController();
  const inLine = acquireSteps(words, FOREVER, controller.signal, true);
  inLine.next(); // in line: COUNT -1
  const child = claimSteps(words, FOREVER, undefined, "child");
  let childWait = child.next().value as Wait;
  const add = Atomics.add;
  let landed = false;
  // The giving child read COUNT -1; before it adds to LOOSE, the caller in line gives up, and
  // the waiting child looks, finds nothing, and sleeps again.
  Atomics.add = ((array: Int32Array, index: number, value: number) => {
    if (!landed && array === words && index === LOOSE) {
      landed = true;
      controller.abort();
      assert.throws(() => inLine.next("aborted"));
      childWait = child.next("ok").value as Wait;
    }
    return add(array, index, value);
  }) as typeof Atomics.add;
  try {
    giveFromChild(words);
  } finally {
    Atomics.add = add;
  }
  assert.equal(landed, true);
  assert.equal(words[OUTSIDE], 1);
  assert.notEqual(childWait.expected, words[OUTSIDE_SEQ], "the child was told");
  assert.equal(claimFree(words), true, "and the permit is free for it");
});
