/**
 * What every primitive in `sync/` shares: leases, argument checks, the errors
 * a wait ends with, and the way a primitive is rebuilt on shared state it did
 * not create (when it arrives in a thread as a task argument).
 *
 * @module
 */

import { bufferOf, isMapped, refOf, sharedBytes, type SharedRef } from "../internal/memory.ts";
import { wholeNumber } from "../internal/options.ts";
import { SerializationError, TimeoutError } from "../errors.ts";
import type { DescribeContext } from "../internal/codec.ts";
import { DIED } from "./_permits.ts";
import { whenChildEnds } from "./_holds.ts";

/** Something a lease gives its permit back to. */
export interface Releasable {
  release(): void;
}

/**
 * What `acquire()` resolves to: disposing it (`using`) releases the permit,
 * once; a second dispose does nothing.
 */
export interface Lease extends Disposable {
  /**
   * Whether a child process died holding this primitive just before this
   * lease was granted (the parent released its lease for it). Whatever the
   * lock protects may have been left half-updated.
   */
  readonly previousOwnerDied: boolean;
}

/**
 * The lease for a new hold of `owner` (permit words `words`): its own small
 * object (a reused one would let a holder that released early, and disposes
 * again at its scope's end, release a later holder's lock), saying whether
 * a holder died holding the primitive just before.
 */
export function leaseFor(owner: Releasable, words: Int32Array): Lease {
  // A plain read: the acquisition just made (an atomic) orders it after the mark of a dead
  // holder, which came before that holder's permit was given back; Atomics.load cost 5 ns here.
  return words[DIED] === 0 || Atomics.exchange(words, DIED, 0) === 0
    ? new PermitLease(owner)
    : new OwnerDiedLease(owner);
}

/** The permit words of each primitive a lease can be taken on, for {@linkcode markOwnerDied}. */
const permitWords = new WeakMap<object, Int32Array>();

/** Records where `owner`'s permit words are (its constructor calls this). */
export function registerPermitWords(owner: object, words: Int32Array): void {
  permitWords.set(owner, words);
}

/**
 * Records that a holder of `owner` died and its permit was given back for
 * it: the next lease, in any thread or process, says `previousOwnerDied`.
 */
export function markOwnerDied(owner: object): void {
  const words = permitWords.get(owner);
  if (words !== undefined) Atomics.add(words, DIED, 1);
}

/** A lease: releases its permit once. Kept to one field, since a hot lock loop makes one per turn. */
class PermitLease implements Lease {
  #owner: Releasable | undefined;

  constructor(owner: Releasable) {
    this.#owner = owner;
  }

  get previousOwnerDied(): boolean {
    return false;
  }

  [Symbol.dispose](): void {
    const owner = this.#owner;
    if (owner === undefined) return;
    this.#owner = undefined;
    owner.release();
  }
}

/** The lease of the first holder after a child died holding the primitive. */
class OwnerDiedLease extends PermitLease {
  override get previousOwnerDied(): boolean {
    return true;
  }
}

// ---- rebuilding a primitive on existing shared state ---------------------

let adopted: ArrayBufferLike | undefined;

/**
 * Runs `create` (a constructor call) so that the constructor adopts the
 * shared memory `ref` names instead of allocating fresh state. The
 * constructor's arguments are then ignored: everything it needs is in the
 * memory or passed by the reviver.
 */
export function adopting<T>(ref: SharedRef, create: () => T): T {
  adopted = bufferOf(ref);
  try {
    return create();
  } finally {
    adopted = undefined;
  }
}

/**
 * Called first by every constructor: the buffer it must adopt, or
 * `undefined` when it is creating a new primitive.
 */
export function adoption(): ArrayBufferLike | undefined {
  const buffer = adopted;
  adopted = undefined;
  return buffer;
}

/** Allocates `length` zeroed shared words (see `internal/memory.ts`). */
export function sharedWords(length: number): Int32Array {
  return new Int32Array(sharedBytes(length * Int32Array.BYTES_PER_ELEMENT));
}

/**
 * What a primitive's descriptor carries for its memory `buffer`: for a
 * thread, and for a child process that maps this program's memory. Any
 * other child reaches primitives through the broker, not here. `recover`
 * mends the primitive when such a child ends (`_holds.ts`, `whenChildEnds`).
 *
 * @throws {SerializationError} When the far side cannot share the memory.
 */
export function sharedState(
  context: DescribeContext,
  buffer: ArrayBufferLike,
  name: string,
  recover?: (pid: number) => void,
): SharedRef {
  if (context.transport !== "thread" && !(context.mapped && isMapped(buffer))) {
    throw new SerializationError(
      `Cannot send a ${name} to this process: it cannot map this program's shared memory`,
    );
  }
  if (context.mapped && recover !== undefined) whenChildEnds(buffer, recover);
  return refOf(buffer);
}

// ---- argument checks -------------------------------------------------------

/** The largest count a shared Int32 word holds. */
export const MAX_COUNT = 0x7fff_ffff;

/**
 * Checks that `value` is a whole number in `min..MAX_COUNT` and returns it.
 *
 * @throws {TypeError} When it is not a number.
 * @throws {RangeError} When it is not whole or out of range.
 */
export function checkCount(value: unknown, min: number, where: string, name: string): number {
  return wholeNumber(value, name, min, where, MAX_COUNT);
}

// ---- how waits end ----------------------------------------------------------

/** The error a wait on an aborted signal rejects with: the signal's reason. */
export function abortReason(signal: AbortSignal | undefined): unknown {
  return signal?.reason ?? new DOMException("The wait was aborted", "AbortError");
}

/** The error `acquire` throws when its time runs out. */
export function timedOut(what: string, timeout: number): TimeoutError {
  return new TimeoutError(`${what} timed out after ${timeout} ms`);
}
