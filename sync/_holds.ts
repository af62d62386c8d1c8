/**
 * What a child process that died was holding, so the parent can give it back.
 *
 * Through the broker the parent holds a child's leases itself. A child that
 * maps the parent's memory takes permits directly, so it writes down what it
 * holds in a small table of mapped memory the parent gave it (its
 * "holds"), and the parent reads the table when the child is gone:
 *
 * ```text
 *   Int32Array of SLOTS × 3 words, one slot per primitive the child has held
 *   ┌──────────┬──────────┬──────────┐
 *   │ FD       │ OFFSET   │ COUNT    │ × SLOTS
 *   └──────────┴──────────┴──────────┘
 *   FD, OFFSET  where the primitive's permit words are in the parent's memory
 *   COUNT       permits the child holds now (a lease taken: +1; a release: -1)
 * ```
 *
 * For each slot with permits the parent finds the primitive it sent (only
 * those: {@linkcode registerHolder}), marks it (`DIED`, so the next lease
 * says `previousOwnerDied`) and releases it that many times, at most
 * {@linkcode MAX_RELEASES}. A child killed in the instant between taking a
 * permit and writing it down (or releasing and writing) leaves that one
 * permit as it is: the table is written right after the take.
 *
 * A child with FFI can write anything in the table, or anywhere in the
 * parent's shared memory: the parent only ever releases primitives it sent
 * to a mapped child, and a bounded number of times.
 *
 * @module
 */

import { bufferOf, type MappedBytes, placeOf } from "../internal/memory.ts";
import { DIED } from "./_permits.ts";
import type { Releasable } from "./_shared.ts";

const SLOTS = 64;
const FD = 0;
const OFFSET = 1;
const COUNT = 2;
const SLOT_WORDS = 3;
/** The size of a child's table of holds. */
export const HOLDS_BYTES: number = SLOTS * SLOT_WORDS * Int32Array.BYTES_PER_ELEMENT;
/** The most permits of one primitive the parent gives back for a dead child. */
export const MAX_RELEASES = 64;

// ---- in a child ------------------------------------------------------------

/** Where this child's table is, from its parent, until the first hold maps it. */
let tableRef: MappedBytes | undefined;
/** This child's table, once mapped. */
let table: Int32Array | undefined;
/** The slot of each primitive in the table, by `fd:offset`. */
const slots = new Map<string, number>();
/**
 * The slot of a permit-words view, kept on the view itself (-1: not the
 * parent's memory, never recorded): a hold is on the path of every lock and
 * unlock, where a WeakMap lookup cost as much as the lock itself.
 */
const SLOT: unique symbol = Symbol("holds slot");
type SlottedWords = Int32Array & { [SLOT]?: number };

/**
 * Makes this process write what it holds into the table `ref` names (a
 * child, at its start). It is mapped at the first hold: a child that never
 * takes a permit directly never loads libc for it.
 */
export function keepHoldsIn(ref: MappedBytes): void {
  tableRef = ref;
}

/** Writes down that this process took (`+1`) or gave back (`-1`) a permit on `words`. */
export function recordHold(words: Int32Array, delta: 1 | -1): void {
  if (tableRef === undefined) return;
  const slot = (words as SlottedWords)[SLOT] ?? findSlot(words, tableRef, delta);
  if (slot < 0) return;
  // Plain reads and writes: only this thread writes the table, and the parent reads it once
  // this process is gone.
  const count = table![slot + COUNT] + delta;
  if (count >= 0) table![slot + COUNT] = count;
}

/** The table slot for `words`: -1 for memory not the parent's, or no slot yet on a release. */
function findSlot(words: Int32Array, ref: MappedBytes, delta: 1 | -1): number {
  const place = placeOf(words.buffer);
  // The table names the parent's memory only (the pid is the parent's: Deno.ppid costs a call).
  if (place === undefined || place.pid !== ref.pid) {
    (words as SlottedWords)[SLOT] = -1;
    return -1;
  }
  table ??= new Int32Array(bufferOf(ref));
  const offset = place.offset + words.byteOffset;
  const key = `${place.fd}:${offset}`;
  let slot = slots.get(key);
  if (slot === undefined) {
    if (delta < 0 || slots.size === SLOTS) return -1;
    slot = slots.size * SLOT_WORDS;
    slots.set(key, slot);
    Atomics.store(table, slot + FD, place.fd);
    Atomics.store(table, slot + OFFSET, offset);
  }
  (words as SlottedWords)[SLOT] = slot;
  return slot;
}

// ---- in the parent ---------------------------------------------------------

/** The primitives sent to children that map memory, by where their permit words are. */
const holders = new Map<string, { owner: Releasable; words: Int32Array }>();

/** Remembers `owner` (permit words `words`) as sent to a child that maps memory. */
export function registerHolder(owner: Releasable, words: Int32Array): void {
  const place = placeOf(words.buffer);
  if (place === undefined || place.pid !== Deno.pid) return;
  holders.set(`${place.fd}:${place.offset + words.byteOffset}`, { owner, words });
}

/** A dead child's table: marks and releases every permit it still held. */
export function releaseHolds(buffer: ArrayBufferLike): void {
  const dead = new Int32Array(buffer);
  for (let slot = 0; slot < dead.length; slot += SLOT_WORDS) {
    const count = Math.min(Atomics.load(dead, slot + COUNT), MAX_RELEASES);
    if (count <= 0) continue;
    const holder = holders.get(`${dead[slot + FD]}:${dead[slot + OFFSET]}`);
    if (holder === undefined) continue;
    Atomics.add(holder.words, DIED, 1);
    for (let i = 0; i < count; i++) {
      try {
        holder.owner.release();
      } catch {
        // Already released (by someone else: any holder may release a Mutex).
        break;
      }
    }
  }
}
