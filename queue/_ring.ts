/**
 * The shared ring under `Queue` and `JoinableQueue`: items as bytes in shared
 * memory (`internal/memory.ts`: a growable SharedArrayBuffer, or mapped
 * memory), a header of shared words that says where they are, and the waits
 * of `put`, `get` and `join`.
 *
 * ```text
 *   header: Int32Array over 64 shared words (four 64-byte lines)
 *
 *   line 0: the lock, the ring it guards, and the lock holder's journal
 *   ┌────────────┬────────────┬────────────┬────────────┐
 *   │ 0 LOCK     │ 1 STEP     │ 2 NOTED    │ 3 LOGGED   │
 *   ├────────────┼────────────┼────────────┼────────────┤
 *   │ 4 HEAD     │ 5 TAIL     │ 6 COUNT    │ 7 CAPACITY │  under the lock
 *   ├────────────┴────────────┴────────────┴────────────┤
 *   │ 8–15 NOTES: up to four pairs (word, new value)    │
 *   └───────────────────────────────────────────────────┘
 *   line 1: words 16–19 ITEMS, a permit counter (sync/_permits.ts): items a get may claim,
 *           and 22–24 its LOOSE, OUTSIDE_SEQ and OUTSIDE words (children's waits)
 *   line 2: words 32–35 SPACE, a permit counter: free places (maxSize only), and 38 its
 *           38–40 its LOOSE, OUTSIDE_SEQ and OUTSIDE words
 *   line 3: read mostly
 *   ┌────────────┬────────────┬────────────┬────────────┐
 *   │48 CLOSED   │49 MAX_SIZE │50 JOINABLE │51 ROOM_SEQ │
 *   ├────────────┼────────────┼────────────┼────────────┤
 *   │52 ROOM_    │53 UNFIN-   │54 JOIN_SEQ │55 JOINERS  │
 *   │   SLEEPERS │   ISHED    │            │            │
 *   ├────────────┼────────────┼────────────┼────────────┤
 *   │56 ORDER    │57 SEQ_LO   │58 SEQ_HI   │59 DEAD_    │  an ordered ring's
 *   │            │            │            │   BYTES    │
 *   └────────────┴────────────┴────────────┴────────────┘
 *
 *   LOCK           0 when free, else the holder process's pid, with bit 30 set
 *                  while callers sleep on it
 *   STEP, NOTED,   what a child holding the lock is doing (see "Child processes")
 *   LOGGED
 *   HEAD           byte offset of the oldest frame
 *   TAIL           byte offset where the next frame goes
 *   COUNT          frames in the ring (HEAD = TAIL is empty when 0, full otherwise)
 *   CAPACITY       bytes of the ring in use as such (the buffer may be larger)
 *   CLOSED         1 once close() ran
 *   MAX_SIZE       the queue's maxSize, 0 for none
 *   JOINABLE       1 for a JoinableQueue: puts count UNFINISHED
 *   ROOM_SEQ       bumped by a get while a put waits for bytes; such puts sleep on it
 *   ROOM_SLEEPERS  puts waiting for bytes
 *   UNFINISHED     items put and not yet marked done (JoinableQueue; under the lock)
 *   JOIN_SEQ       bumped when UNFINISHED reaches 0; join() sleeps on it
 *   JOINERS        callers inside join()
 *
 *   data: CAPACITY bytes (64 KiB at first, 64 MiB at most) of a growable SharedArrayBuffer
 *   (heap memory, grown with CAPACITY), or of 64 MiB of mapped memory, which cannot grow: it is
 *   allocated at its largest (a sparse file: pages the ring never reaches cost nothing), and
 *   only CAPACITY grows. Nothing reads or fills the data beyond CAPACITY. An ordered ring's
 *   index is allocated the same way (96 MiB mapped; it holds MAX_ENTRIES from the start),
 *   after 2 KiB of undo records for a child's changes (see "Child processes").
 *   ┌────────┬─────────┬─────────┬─────────┬──────────────┬──────┐
 *   │ free   │ frame 1 │ frame 2 │ frame 3 │ free         │ WRAP │   linear:  HEAD < TAIL
 *   └────────┴─────────┴─────────┴─────────┴──────────────┴──────┘
 *            HEAD                          TAIL
 *   ┌─────────┬─────────┬─────────────┬─────────┬─────────┬──────┐
 *   │ frame 3 │ frame 4 │ free        │ frame 1 │ frame 2 │ WRAP │   wrapped: TAIL <= HEAD
 *   └─────────┴─────────┴─────────────┴─────────┴─────────┴──────┘
 *                       TAIL          HEAD
 *
 *   frame: one 32-bit word, tag in bits 0–3, length (or a small integer) in
 *   bits 4–31, then the payload padded to 4 bytes. Tags: WRAP (the rest of
 *   the ring is padding: go on at 0), undefined, null, false, true, a small
 *   integer (-2^27 … 2^27 - 1, in the word itself), a float64 (8 bytes), a
 *   UTF-8 string, and anything else as `node:v8` serialize bytes (strings
 *   with a lone surrogate too, which UTF-8 cannot carry).
 * ```
 *
 * A frame is never split: one that does not fit before the end of the ring
 * leaves a WRAP word and starts at 0. When the ring empties, HEAD and TAIL go
 * back to 0, so the whole ring is one free run again.
 *
 * Put: encode the item (outside the lock: numbers, booleans, null, undefined
 * and strings of up to 256 units are written straight into the ring, with
 * no allocation), claim a SPACE permit when the queue has a maxSize, take
 * the lock, find room for the frame, write it, COUNT + 1, release the lock,
 * and give ITEMS a permit. When there is no room the ring grows (to twice
 * power of two at least twice its size, up to {@linkcode MAX_BYTES}); a
 * wrapped ring then moves its older run, HEAD to the old end, to the new
 * end (which never overlaps it, so a copy cut short leaves it whole). Get: claim an ITEMS permit, take the lock, read the frame at HEAD,
 * COUNT - 1, release the lock, give SPACE a permit back, and deserialize
 * outside the lock. A permit is only given once its item is written, so a
 * get that holds one always finds an item, until close(): that adds spare
 * ITEMS permits (one more than the gets waiting), and a get that then finds
 * the ring empty gives its permit back and fails, so the spare goes on to
 * the next. Items arrive exactly once: one permit, one frame, under the lock.
 * (A get that finds the ring empty and open holds a permit given back twice
 * after a child died, see below: it drops it and waits again. A put that
 * finds maxSize items there drops its place the same way.)
 *
 * The lock guards the copy of one frame and is never held across a wait, so
 * every caller takes it the blocking way, the main thread too (for a large
 * item, it may wait for another thread's copy of it): async calls from one
 * thread then reach the ring in the order their permits came, which the
 * permit lines below keep in the order the calls were made. Calls made
 * without awaiting each other (as the process broker makes them) keep their
 * order. Only a put waiting for bytes (the ring full at 64 MiB) sleeps on
 * ROOM_SEQ, counted in ROOM_SLEEPERS so that a get bumps and notifies only
 * when someone sleeps there.
 *
 * Fairness: ITEMS and SPACE are the permit counters of `sync/_permits.ts`,
 * so a get that has to wait for an item (or a put for a place) joins a line
 * that nobody arriving later overtakes, and those asleep in it are served in
 * the order they went to sleep: each permit is handed to the longest
 * sleeper, not left for newcomers. (So a permit handed to an async `get`
 * whose thread is meanwhile blocked in `getSync` waits for that thread, and
 * the `getSync` for the next item.) Puts waiting for bytes are woken
 * together and retry: a smaller item may fit first. The lock is one word
 * holding its holder's pid (a futex lock, bit 30 set while anyone sleeps on
 * it): taking it is one compareExchange that also says who holds it.
 *
 * Child processes. A child that maps this program's memory (`memory.ts`)
 * uses the ring directly, but a child can be killed at any instruction, so
 * everything it changes happens under the lock, where the parent can see
 * who was changing it and finish or undo it ({@linkcode Ring.recoverFrom},
 * run when the child is gone):
 *
 * - it claims only free permits, with its STEP word saying so before the
 *   claim (CLAIMING_ITEM, CLAIMING_SPACE), and gives them (WROTE_ITEM,
 *   TOOK_ITEM) under the lock too, each in one atomic step (the counters
 *   that children use directly, in `sync/_permits.ts`);
 * - several words change together through the journal: the new values are
 *   noted first, NOTED set, then applied (a child that dies midway has them
 *   applied again), as for a put's TAIL, COUNT, UNFINISHED and STEP;
 * - what an ordered ring changes in place before that (the index entries a
 *   sift moves, a frame marked taken, the offsets a growth moves) gets an
 *   undo record first, counted in LOGGED, which the commit clears before
 *   NOTED goes back to 0; a child never compacts (it grows instead; at
 *   64 MiB a put of it waits until a put in this process compacts the
 *   ring, or gets free the frames at its ends, which a PriorityQueue's
 *   seldom do);
 * - it never joins a permit line: while nothing is free it sleeps outside
 *   the line (on the counter's OUTSIDE_SEQ), and each item or place that
 *   may have come free wakes one such sleeper. So a child is served after
 *   the callers in line, and its calls come in no set order among each
 *   other's.
 *
 * When a dead child held the lock, the parent applies its journal (or, when
 * nothing was noted, undoes what the undo records say, newest first), gives
 * back the permit its STEP names, frees the lock and wakes every sleeper. Where
 * it cannot tell whether a claim or a give was made, it gives: a permit given
 * twice is dropped by the first call that finds nothing behind it (above),
 * while one never given back would stall a queue for good. A child killed
 * while asleep leaves only its count in OUTSIDE (a wake-up per item
 * more). The parent learns of a child's end on its event loop: a wait for
 * the lock in the parent also looks for itself every 100 ms, but a
 * `getSync` on the parent's main thread waiting for an item that a dead
 * child still owed it waits for the next item instead. A thread terminated
 * (`Worker.terminate()`) inside the lock, in any process, leaves it held.
 *
 * No busy spinning: a blocking caller looks again at most 200 times with
 * `Atomics.pause()` (about 10 µs) before it sleeps in `Atomics.wait`, so that
 * a consumer that keeps up with its producer does not pay a futex wake-up per
 * item; async callers never spin. Every wait that can last sleeps through
 * `internal/wait.ts`.
 *
 * @module
 */

import { deserialize, serialize } from "node:v8";
import { QueueClosedError, SerializationError, type TimeoutError } from "../errors.ts";
import { describeType, jsonExact } from "../internal/codec.ts";
import {
  bufferOf,
  growableBytes,
  isParents,
  sharedBytes,
  type SharedRef,
} from "../internal/memory.ts";
import { Deadline, notify, runSync, type WaitSteps } from "../internal/wait.ts";
import { processEnded } from "../internal/libc.ts";
import {
  acquireSteps,
  claimFree,
  COUNT as PERMITS,
  FOREVER,
  givePermit,
  LOOSE,
  NONE,
  OPEN,
  OUTSIDE,
  OUTSIDE_SEQ,
  SHARED_PERMIT_WORDS,
  signalOutside,
  takeFree,
  waitOutsideSteps,
  WAKE,
  wakeEveryone,
} from "../sync/_permits.ts";
import { abortReason, timedOut } from "../sync/_shared.ts";
import { PID } from "../sync/_holds.ts";

// ---- the header ------------------------------------------------------------

/** The lock: 0 when free, else the holder's pid, with {@linkcode CONTENDED} while anyone sleeps on it. */
const LOCK = 0;
/** The lock word's bit set while callers sleep on it (a pid is below 2^22). */
const CONTENDED = 1 << 30;
/** Byte offset of the oldest frame. */
const HEAD = 4;
/** Byte offset where the next frame goes. */
const TAIL = 5;
/** Frames in the ring. */
const COUNT = 6;
/** Bytes of the ring. */
const CAPACITY = 7;
/** 1 once closed. */
const CLOSED = 48;
/** The maxSize, 0 for none. */
const MAX_SIZE = 49;
/** 1 for a JoinableQueue. */
const JOINABLE = 50;
/** Puts waiting for bytes sleep on this sequence number. */
const ROOM_SEQ = 51;
/** How many puts wait for bytes. */
const ROOM_SLEEPERS = 52;
/** Items put and not yet marked done. */
const UNFINISHED = 53;
/** join() sleeps on this sequence number. */
const JOIN_SEQ = 54;
/** Callers inside join(). */
const JOINERS = 55;
/** Word offset of the ITEMS permit counter (its own cache line). */
const ITEMS = 16;
/** Which item a get takes: FIFO, LIFO or PRIORITY. */
const ORDER = 56;
/** The next put's sequence number, low and high 32 bits (ordered rings). */
const SEQ_LO = 57;
/** See {@linkcode SEQ_LO}. */
const SEQ_HI = 58;
/** Bytes of frames taken out of order and not yet passed by HEAD (ordered rings). */
const DEAD_BYTES = 59;
/** Word offset of the SPACE permit counter (its own cache line). */
const SPACE = 32;
/** What the lock holder is doing with a permit (IDLE, CLAIMING_ITEM…): see {@linkcode Ring.recoverFrom}. */
const STEP = 1;
/** How many noted (word, value) pairs are being applied: 0 when none. */
const NOTED = 2;
/** Undo records a child's change of an ordered ring has written so far (see {@linkcode Ring.recoverFrom}). */
const LOGGED = 3;
/** The first noted pair. */
const NOTES = 8;
/** The most pairs one change notes. */
const MAX_NOTES = 4;
/** Words in the header. */
const HEADER_WORDS = 64;

// The lock holder's STEP: which permit a child that dies there holds or owes.
/** Nothing held or owed. */
const IDLE = 0;
/** Claiming (or holding) an ITEMS permit; the frame is not taken yet. */
const CLAIMING_ITEM = 1;
/** The frame is taken; its SPACE permit is not given back yet. */
const TOOK_ITEM = 2;
/** Claiming (or holding) a SPACE permit; the frame is not written yet. */
const CLAIMING_SPACE = 3;
/** The frame is written; its ITEMS permit is not given yet. */
const WROTE_ITEM = 4;

/** A get takes the oldest item (`Queue`). */
export const FIFO = 0;
/** A get takes the newest item (`LifoQueue`). */
export const LIFO = 1;
/** A get takes the item of the lowest priority, the oldest among equals (`PriorityQueue`). */
export const PRIORITY = 2;
/** Numbers per entry of an ordered ring's index: priority, sequence number, frame offset. */
const ENTRY = 3;
/** Entries of a new index. */
const INITIAL_ENTRIES = 1024;
/** Undo records at the start of an ordered ring's index: (what, and three old values) each. */
const LOG_RECORDS = 64;
/** Bytes of the undo records, before the index's entries. */
const LOG_BYTES = LOG_RECORDS * 4 * 8;
/** An undo record's `what` for a word of the frames (else the number of an index entry). */
const FRAME_WORD = -1;
/** An undo record's `what` for a growth that moved index offsets. */
const MOVED = -2;
/** The most items an ordered ring holds: a put waits for room beyond it. */
const MAX_ENTRIES = 4 * 1024 * 1024;

/** Bytes of a new ring. */
export const INITIAL_BYTES = 64 * 1024;
/** The most bytes a ring grows to: 64 MiB. An item's frame must fit in it. */
export const MAX_BYTES = 64 * 1024 * 1024;

// ---- frames ----------------------------------------------------------------

const WRAP = 0;
const UNDEFINED = 1;
const NULL = 2;
const FALSE = 3;
const TRUE = 4;
const SMALL_INT = 5;
const FLOAT = 6;
const STRING = 7;
const SERIALIZED = 8;
/** A frame taken out of order (LIFO, PRIORITY); its whole size is in the length bits. */
const DEAD = 9;
/** A frame of JSON text (UTF-8): objects and arrays that JSON carries exactly, far cheaper than `node:v8`. */
const JSON_TEXT = 10;
const TAG_BITS = 4;
const TAG_MASK = 0xf;

/** Strings up to this many UTF-16 units are encoded straight into the ring. */
const SHORT_STRING = 256;
/** Payloads up to this many bytes are decoded inside the lock; longer ones are copied out first. */
const DECODE_IN_PLACE = 1024;

/** How many times a blocking caller looks again before it sleeps. */
const SPINS = 200;
/** How often a parent waiting for its ring's lock looks whether the child holding it has ended. */
const LOCK_CHECK_MS = 100;

const ENCODER = new TextEncoder();
// ignoreBOM: a string that starts with U+FEFF keeps it.
const DECODER = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * The buffers a ring lives in: SharedArrayBuffers (heap memory), or views of
 * mapped memory (see `internal/memory.ts`), which do not grow: they are
 * allocated at their largest size, and the CAPACITY word says how much of
 * the data is in use.
 */
export interface RingState {
  /** The header words. */
  readonly header: ArrayBufferLike;
  /** The frames: a growable SharedArrayBuffer, or {@linkcode MAX_BYTES} of mapped memory. */
  readonly data: ArrayBufferLike;
  /** An ordered ring's index: a binary heap of its items (growable, or mapped at its largest). */
  readonly index?: ArrayBufferLike;
}

/** A {@linkcode RingState} in transit: each buffer as a {@linkcode SharedRef}. */
export interface RingRefs {
  /** The header words. */
  readonly header: SharedRef;
  /** The frames. */
  readonly data: SharedRef;
  /** An ordered ring's index. */
  readonly index?: SharedRef;
}

/** What {@linkcode Ring.write} did. */
export const WROTE = 0;
/** See {@linkcode WROTE}. */
export const WAS_CLOSED = 1;
/** See {@linkcode WROTE}. */
const NO_ROOM = 2;
/** See {@linkcode WROTE}: no place was free (or the one held was a spare, dropped). */
const FULL = 3;

/** What a take returns when it found no item. */
export const NOTHING: typeof NONE = NONE;

function align4(bytes: number): number {
  return (bytes + 3) & ~3;
}

function isSmallInt(n: number): boolean {
  return ((n << TAG_BITS) >> TAG_BITS) === n && (n !== 0 || 1 / n > 0);
}

/** An item's bytes, made before taking the lock, and the frame tag that says how to read them. */
export interface Payload {
  /** STRING (UTF-8), JSON_TEXT or SERIALIZED (`node:v8`). */
  readonly tag: number;
  /** The bytes. */
  readonly bytes: Uint8Array;
}

/**
 * The bytes of an item that must be made before taking the lock (long
 * strings, and everything `node:v8` carries); `undefined` for items written
 * straight into the ring (numbers, booleans, `null`, `undefined`, short
 * strings), which so cost no allocation.
 *
 * @throws {SerializationError} When `node:v8` cannot serialize the item.
 * @throws {RangeError} When a string is certainly too large for the ring.
 */
export function encodePayload(item: unknown): Payload | undefined {
  switch (typeof item) {
    case "number":
    case "boolean":
    case "undefined":
      return undefined;
    case "string":
      // A lone surrogate has no UTF-8 form: node:v8 keeps it.
      if (!item.isWellFormed()) break;
      if (item.length <= SHORT_STRING) return undefined;
      // Its UTF-8 is at least this long: refuse before allocating it.
      if (item.length > MAX_BYTES) throw tooLarge(item.length, "at least ");
      return { tag: STRING, bytes: ENCODER.encode(item) };
    case "object":
      if (item === null) return undefined;
  }
  try {
    // Inside the try: reading the item runs its getters, which may throw.
    if (jsonExact(item, 1, new Set())) {
      return { tag: JSON_TEXT, bytes: ENCODER.encode(JSON.stringify(item)) };
    }
    return { tag: SERIALIZED, bytes: serialize(item) };
  } catch (error) {
    throw new SerializationError(
      `Cannot put ${describeType(item)} in a queue: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/**
 * An item as bytes outside shared memory (a Redis queue): a tag byte, the
 * same tags as a ring frame, then a float64, UTF-8 or `node:v8` bytes.
 *
 * @throws {SerializationError} When `node:v8` cannot serialize the item.
 */
export function itemToBytes(item: unknown): Uint8Array {
  let tag: number;
  let body: Uint8Array | undefined;
  switch (typeof item) {
    case "undefined":
      tag = UNDEFINED;
      break;
    case "boolean":
      tag = item ? TRUE : FALSE;
      break;
    case "number":
      tag = FLOAT;
      body = new Uint8Array(8);
      new DataView(body.buffer).setFloat64(0, item, true);
      break;
    default: {
      if (item === null) {
        tag = NULL;
        break;
      }
      const payload = typeof item === "string" && item.isWellFormed()
        ? { tag: STRING, bytes: ENCODER.encode(item) }
        : encodePayload(item)!;
      tag = payload.tag;
      body = payload.bytes;
    }
  }
  const bytes = new Uint8Array(1 + (body?.length ?? 0));
  bytes[0] = tag;
  if (body !== undefined) bytes.set(body, 1);
  return bytes;
}

/**
 * The item {@linkcode itemToBytes} made.
 *
 * @throws {Error} When the bytes are not such an item.
 */
export function itemFromBytes(bytes: Uint8Array): unknown {
  const body = bytes.subarray(1);
  switch (bytes[0]) {
    case UNDEFINED:
      return undefined;
    case NULL:
      return null;
    case FALSE:
      return false;
    case TRUE:
      return true;
    case FLOAT:
      return new DataView(body.buffer, body.byteOffset, 8).getFloat64(0, true);
    case STRING:
      return DECODER.decode(body);
    case JSON_TEXT:
      return JSON.parse(DECODER.decode(body));
    case SERIALIZED:
      return deserialize(body);
    default:
      throw new Error(`queue: an item of unknown tag ${bytes[0]}`);
  }
}

/** The frame size to find room for: exact, or an upper bound for a short string. */
export function frameBytes(item: unknown, payload: Payload | undefined): number {
  if (payload !== undefined) return 4 + align4(payload.bytes.length);
  if (typeof item === "number") return isSmallInt(item) ? 4 : 12;
  if (typeof item === "string") return 4 + align4(item.length * 3);
  return 4;
}

/**
 * Refuses a frame that could never fit in the ring.
 *
 * @throws {RangeError} When `need` is more than {@linkcode MAX_BYTES}.
 */
export function checkFrame(need: number): void {
  if (need > MAX_BYTES) throw tooLarge(need - 4, "");
}

function tooLarge(bytes: number, qualifier: string): RangeError {
  return new RangeError(
    `Cannot put an item of ${qualifier}${bytes} bytes in a queue: its ring holds at most ` +
      `${MAX_BYTES} bytes (64 MiB)`,
  );
}

/** Takes a free permit from `words` (a permit counter), looking again for about 10 µs. */
function spin(words: Int32Array): boolean {
  for (let i = 0; i < SPINS; i++) {
    Atomics.pause();
    if (Atomics.load(words, 0) > 0 && takeFree(words)) return true;
  }
  return false;
}

/** A deadline `timeout` ms from now, reading the clock only when there is one. */
export function deadlineIn(timeout: number): Deadline {
  return timeout === Infinity ? FOREVER : new Deadline(timeout);
}

let adopted: Ring | undefined;

/** Runs `create` (a queue constructor) so that it adopts `ring`. */
export function adopting<T>(ring: Ring, create: () => T): T {
  adopted = ring;
  try {
    return create();
  } finally {
    adopted = undefined;
  }
}

/** Called by the queue constructor: the ring to adopt, or `undefined`. */
export function adoption(): Ring | undefined {
  const ring = adopted;
  adopted = undefined;
  return ring;
}

/** One thread's view of a shared ring. */
export class Ring {
  /** The header words. */
  readonly header: Int32Array<ArrayBufferLike>;
  /** Items a get may claim. */
  readonly itemWords: Int32Array<ArrayBufferLike>;
  /** Free places, when the queue has a maxSize. */
  readonly spaceWords: Int32Array<ArrayBufferLike>;
  /** The maxSize, or `Infinity`. */
  readonly maxSize: number;
  /** The class name that error messages use. */
  label = "Queue";
  readonly #data: ArrayBufferLike;
  // Length-tracking views: they follow a SharedArrayBuffer as it grows, in every thread.
  // (Mapped memory does not grow: it is allocated at its largest.)
  readonly #bytes: Uint8Array<ArrayBufferLike>;
  readonly #ints: Int32Array<ArrayBufferLike>;
  readonly #view: DataView<ArrayBufferLike>;
  /**
   * Whether this process is a child using its parent's ring: it changes it
   * only under the lock and never joins a permit line (see "Child processes").
   */
  readonly inChild: boolean;
  /** The ROOM_SEQ value a put read before it sleeps on it. */
  #roomSeq = 0;
  /** Set by a take that bumped ROOM_SEQ: puts waiting for bytes are to be woken. */
  #wakeRoom = false;
  /** The bytes of dead frames {@linkcode Ring.#nextLive} passed (they leave DEAD_BYTES). */
  #passed = 0;
  // The frame a take read (#takeFrame), until it is decoded outside the lock.
  #tag = 0;
  #value: unknown;
  #copy: Uint8Array | undefined;
  #indexBuffer?: ArrayBufferLike;
  /** An ordered ring's heap of entries (priority, sequence number, frame offset). */
  #index?: Float64Array<ArrayBufferLike>;
  /** An ordered ring's undo records, for a child's change (see {@linkcode Ring.recoverFrom}). */
  #log?: Float64Array<ArrayBufferLike>;

  /** A view of an existing ring; `inChild` when it is the parent's, in a child process. */
  constructor(state: RingState, inChild = false) {
    this.inChild = inChild;
    this.header = new Int32Array(state.header);
    this.itemWords = new Int32Array(state.header, ITEMS * 4, SHARED_PERMIT_WORDS);
    this.spaceWords = new Int32Array(state.header, SPACE * 4, SHARED_PERMIT_WORDS);
    this.maxSize = this.header[MAX_SIZE] === 0 ? Infinity : this.header[MAX_SIZE];
    this.#data = state.data;
    this.#bytes = new Uint8Array(state.data);
    this.#ints = new Int32Array(state.data);
    this.#view = new DataView(state.data);
    if (state.index !== undefined) {
      this.#indexBuffer = state.index;
      this.#log = new Float64Array(state.index, 0, LOG_RECORDS * 4);
      this.#index = new Float64Array(state.index, LOG_BYTES);
    }
  }

  /** A view of the ring whose buffers `refs` name (sent by {@linkcode Ring.refs}). */
  static revive(refs: RingRefs): Ring {
    const state = { header: bufferOf(refs.header), data: bufferOf(refs.data) };
    return new Ring(
      refs.index === undefined ? state : { ...state, index: bufferOf(refs.index) },
      isParents(state.header),
    );
  }

  /**
   * Makes a new, empty ring. In heap memory its data is a growable
   * SharedArrayBuffer; mapped memory cannot grow, so it is mapped at
   * {@linkcode MAX_BYTES} at once: the file is sparse, and only the pages
   * the ring comes to use (CAPACITY bytes at most) take memory.
   */
  static create(maxSize: number): Ring {
    const header = sharedBytes(HEADER_WORDS * 4);
    const words = new Int32Array(header);
    words[CAPACITY] = INITIAL_BYTES;
    if (maxSize !== Infinity) {
      words[MAX_SIZE] = maxSize;
      words[SPACE] = maxSize;
    }
    const data = growableBytes(INITIAL_BYTES, MAX_BYTES);
    return new Ring({ header, data });
  }

  /** The buffers. */
  get state(): RingState {
    const state = { header: this.header.buffer, data: this.#data };
    return this.#indexBuffer === undefined ? state : { ...state, index: this.#indexBuffer };
  }

  /**
   * The buffers in transit, `ref` making each one's {@linkcode SharedRef}
   * (`sharedState` of `sync/_shared.ts`, which checks the far side can map it).
   */
  refs(ref: (buffer: ArrayBufferLike) => SharedRef): RingRefs {
    const refs = { header: ref(this.header.buffer), data: ref(this.#data) };
    return this.#indexBuffer === undefined ? refs : { ...refs, index: ref(this.#indexBuffer) };
  }

  /** Puts waiting for bytes (the ring full at its limit). */
  get roomSleepers(): number {
    return Atomics.load(this.header, ROOM_SLEEPERS);
  }

  /** The pid of the process holding the lock, 0 when it is free. */
  get lockHolder(): number {
    return Atomics.load(this.header, LOCK) & ~CONTENDED;
  }

  /** Bytes of the ring in use as such (CAPACITY): where it has grown to. */
  get capacity(): number {
    return Atomics.load(this.header, CAPACITY);
  }

  /** Whether a get takes other than the oldest item (LIFO, PRIORITY). */
  get ordered(): boolean {
    return this.#index !== undefined;
  }

  /** Whether puts take a priority. */
  get prioritized(): boolean {
    return this.header[ORDER] === PRIORITY;
  }

  /** Makes a new, empty ring hand out items in `order` (a new LifoQueue or PriorityQueue). */
  makeOrdered(order: typeof LIFO | typeof PRIORITY, label: string): void {
    this.label = label;
    if (this.#index !== undefined) return;
    this.header[ORDER] = order;
    this.#indexBuffer = growableBytes(
      LOG_BYTES + INITIAL_ENTRIES * ENTRY * 8,
      LOG_BYTES + MAX_ENTRIES * ENTRY * 8,
    );
    this.#log = new Float64Array(this.#indexBuffer, 0, LOG_RECORDS * 4);
    this.#index = new Float64Array(this.#indexBuffer, LOG_BYTES);
  }

  /** Whether the queue has a maxSize. */
  get bounded(): boolean {
    return this.maxSize !== Infinity;
  }

  /** Items in the ring now. */
  get size(): number {
    return Atomics.load(this.header, COUNT);
  }

  /** Whether close() ran. */
  get closed(): boolean {
    return Atomics.load(this.header, CLOSED) !== 0;
  }

  /** Makes puts count unfinished tasks (a new JoinableQueue). */
  makeJoinable(): void {
    this.header[JOINABLE] = 1;
    this.label = "JoinableQueue";
  }

  /** Takes the lock, blocking: it is only ever held for a short copy. */
  lock(): void {
    const header = this.header;
    if (Atomics.compareExchange(header, LOCK, 0, PID) === 0) return;
    for (let i = 0; i < SPINS; i++) {
      Atomics.pause();
      if (Atomics.load(header, LOCK) === 0 && Atomics.compareExchange(header, LOCK, 0, PID) === 0) {
        return;
      }
    }
    runSync(this.#lockSteps());
  }

  /**
   * The slow path of {@linkcode Ring.lock}: marks the lock contended and
   * sleeps on it. In the process that made the ring, a sleep ends every
   * {@linkcode LOCK_CHECK_MS} to see whether a child holds the lock and has
   * ended: the parent's event loop, which would mend the ring when it learns
   * of the end, is what this wait may be blocking.
   */
  *#lockSteps(): WaitSteps<void> {
    const header = this.header;
    for (;;) {
      let seen = Atomics.load(header, LOCK);
      if (seen === 0) {
        // Taken as contended: others may still sleep on it.
        if (Atomics.compareExchange(header, LOCK, 0, PID | CONTENDED) === 0) return;
        continue;
      }
      if ((seen & CONTENDED) === 0) {
        if (Atomics.compareExchange(header, LOCK, seen, seen | CONTENDED) !== seen) continue;
        seen |= CONTENDED;
      }
      const holder = seen & ~CONTENDED;
      const timeout = holder === PID || this.inChild ? Infinity : LOCK_CHECK_MS;
      const reason = yield { words: header, index: LOCK, expected: seen, timeout };
      if (reason === "timed-out" && processEnded(holder)) this.recoverFrom(holder);
    }
  }

  /** Releases the lock, waking one sleeper if any. */
  unlock(): void {
    if ((Atomics.exchange(this.header, LOCK, 0) & CONTENDED) !== 0) notify(this.header, LOCK, 1);
  }

  /** Notes that word `index` becomes `value`, as pair `n` of a change (lock held). */
  #note(n: number, index: number, value: number): void {
    this.header[NOTES + 2 * n] = index;
    this.header[NOTES + 2 * n + 1] = value;
  }

  /**
   * Applies the `n` pairs noted, so that a child dying midway leaves them to
   * be applied again by the parent (lock held).
   */
  #commit(n: number): void {
    const header = this.header;
    Atomics.store(header, NOTED, n);
    this.#apply(n);
    // Before NOTED goes back to 0: a change applied must never be undone.
    header[LOGGED] = 0;
    Atomics.store(header, NOTED, 0);
  }

  /**
   * In a child, before a change of an ordered ring that no journal covers:
   * writes an undo record (`what`, then the three old values) and counts it.
   */
  #logUndo(what: number, a: number, b: number, c: number): void {
    const header = this.header;
    const log = this.#log!;
    const n = header[LOGGED];
    if (n >= LOG_RECORDS) {
      throw this.#corrupt(`more than ${LOG_RECORDS} undo records in one change`);
    }
    const at = n * 4;
    log[at] = what;
    log[at + 1] = a;
    log[at + 2] = b;
    log[at + 3] = c;
    header[LOGGED] = n + 1;
  }

  /** In a child, before index entry `e` is written: its old values. */
  #logEntry(e: number): void {
    if (!this.inChild) return;
    const index = this.#index!;
    this.#logUndo(e, index[e * ENTRY], index[e * ENTRY + 1], index[e * ENTRY + 2]);
  }

  /**
   * Undoes, newest first, what a child that died changing an ordered ring
   * wrote before its change was noted (lock held).
   */
  #undo(): void {
    const header = this.header;
    const log = this.#log;
    const index = this.#index;
    const n = Math.min(header[LOGGED], LOG_RECORDS);
    header[LOGGED] = 0;
    if (log === undefined || index === undefined) return;
    for (let r = n - 1; r >= 0; r--) {
      const [what, a, b, c] = log.subarray(r * 4, r * 4 + 4);
      if (what === FRAME_WORD) {
        this.#ints[a >> 2] = b;
      } else if (what === MOVED) {
        // Offsets a growth moved (from `a` on, by `b`) go back; the ones it had not are below.
        this.#moveEntries((at) => at >= a + b ? at - b : at);
      } else if (what >= 0) {
        index.set([a, b, c], what * ENTRY);
      }
    }
  }

  #apply(n: number): void {
    const header = this.header;
    for (let i = 0; i < n; i++) header[header[NOTES + 2 * i]] = header[NOTES + 2 * i + 1];
  }

  /**
   * Gives a permit of `words` (ITEMS or SPACE): through the line in this
   * process; in a child, in one atomic step. Wakes a child waiting outside
   * the line.
   */
  #give(words: Int32Array): void {
    givePermit(words, Infinity, this.inChild ? "child" : "parent");
  }

  /** Gives back a SPACE permit (a place freed, or claimed and not used). */
  giveBackSpace(): void {
    if (this.bounded) this.#give(this.spaceWords);
  }

  // ---- put ------------------------------------------------------------------

  /**
   * Writes an item's frame if it can now: {@linkcode WROTE},
   * {@linkcode WAS_CLOSED}, {@linkcode FULL} (no place free) or
   * {@linkcode NO_ROOM} (the ring full at {@linkcode MAX_BYTES}); then, with
   * `register`, the caller is counted in ROOM_SLEEPERS and must sleep on
   * ROOM_SEQ with the value in `#roomSeq`, then call `#leaveRoomLine`. Holds
   * no permit after any of them but WROTE. A thread claims a place first
   * unless it `holdsSpace`; a child claims it under the lock.
   */
  write(
    item: unknown,
    payload: Payload | undefined,
    need: number,
    register: boolean,
    priority = 0,
    holdsSpace = false,
  ): number {
    const inChild = this.inChild;
    if (this.bounded && !inChild && !holdsSpace && !claimFree(this.spaceWords)) return FULL;
    const header = this.header;
    const held = this.bounded && !inChild;
    this.lock();
    try {
      if (header[CLOSED] !== 0) {
        if (held) this.giveBackSpace();
        return WAS_CLOSED;
      }
      if (this.bounded) {
        if (inChild) {
          header[STEP] = CLAIMING_SPACE;
          if (!claimFree(this.spaceWords)) return FULL;
        }
        // A place given back twice after a child died: dropped.
        if (header[COUNT] >= this.maxSize) return FULL;
      }
      const at = this.#index !== undefined && !this.#indexRoom() ? -1 : this.#room(need);
      if (at < 0) {
        if (register) {
          header[ROOM_SLEEPERS]++;
          this.#roomSeq = Atomics.load(header, ROOM_SEQ);
        }
        this.giveBackSpace();
        return NO_ROOM;
      }
      const tail = at + this.#writeFrame(at, item, payload);
      if (this.#index !== undefined) this.#push(priority, at);
      this.#note(0, TAIL, tail);
      this.#note(1, COUNT, header[COUNT] + 1);
      this.#note(2, STEP, inChild ? WROTE_ITEM : IDLE);
      const joinable = header[JOINABLE] !== 0;
      if (joinable) this.#note(3, UNFINISHED, header[UNFINISHED] + 1);
      this.#commit(joinable ? 4 : 3);
      if (inChild) this.#give(this.itemWords);
    } finally {
      // (An op that threw, on memory something else overwrote, leaves no undo records.)
      header[LOGGED] = 0;
      header[STEP] = IDLE;
      this.unlock();
    }
    if (!inChild) this.#give(this.itemWords);
    return WROTE;
  }

  /**
   * The part of a put that may wait: claims a place, then writes, waiting for bytes while the ring is full at its
   * limit, until `deadline` (`timeout` is its length, for messages). A
   * `blocking` caller (`putSync`) looks again for a while before it sleeps.
   *
   * @throws {TimeoutError} When the deadline passes (`method` names the call in messages).
   * @throws {QueueClosedError} When the queue is closed meanwhile.
   * @throws The signal's reason when it is aborted.
   */
  *putSteps(
    item: unknown,
    payload: Payload | undefined,
    need: number,
    deadline: Deadline,
    timeout: number,
    signal: AbortSignal | undefined,
    method: string,
    blocking: boolean,
    priority = 0,
  ): WaitSteps<void> {
    const header = this.header;
    const outside = this.bounded && this.inChild;
    const space = this.spaceWords;
    if (outside) Atomics.add(space, OUTSIDE, 1);
    try {
      for (;;) {
        // A thread claims its place first, in line; a child claims it under the lock.
        const holds = this.bounded && !this.inChild;
        if (holds && !(yield* this.#claimSteps(space, deadline, signal, blocking))) {
          throw this.timedOut(method, timeout);
        }
        const seen = Atomics.load(space, OUTSIDE_SEQ);
        const result = this.write(item, payload, need, true, priority, holds);
        if (result === WROTE) return;
        if (result === WAS_CLOSED) throw this.closedForPut(method);
        // A thread that found no place (a spare was dropped) claims one again, in line.
        if (result === FULL && !this.inChild) continue;
        const remaining = deadline.remaining();
        const reason = remaining === 0 ? "timed-out" : yield {
          words: result === FULL ? space : header,
          index: result === FULL ? OUTSIDE_SEQ : ROOM_SEQ,
          expected: result === FULL ? seen : this.#roomSeq,
          timeout: remaining,
          signal,
        };
        if (result === NO_ROOM) this.#leaveRoomLine();
        if (reason === "aborted") throw abortReason(signal);
        if (deadline.remaining() === 0) throw this.timedOut(method, timeout);
      }
    } finally {
      if (outside) {
        Atomics.sub(space, OUTSIDE, 1);
        // Another child's put may have been woken for a place this one did not take.
        signalOutside(space);
      }
    }
  }

  #leaveRoomLine(): void {
    this.lock();
    this.header[ROOM_SLEEPERS]--;
    this.unlock();
  }

  /** Finds room for `need` bytes, growing the ring if it may; -1 when there is none. Lock held. */
  #room(need: number): number {
    const header = this.header;
    for (;;) {
      const capacity = header[CAPACITY];
      if (!(capacity >= INITIAL_BYTES && capacity <= MAX_BYTES)) {
        throw this.#corrupt(`a capacity of ${capacity} bytes`);
      }
      if (header[COUNT] === 0) {
        header[HEAD] = 0;
        header[TAIL] = 0;
        if (need <= capacity) return 0;
      } else {
        const head = header[HEAD];
        const tail = header[TAIL];
        if (tail > head) {
          if (need <= capacity - tail) return tail;
          if (need <= head) {
            if (tail < capacity) this.#ints[tail >> 2] = WRAP;
            return 0;
          }
        } else if (need <= head - tail) {
          return tail;
        }
      }
      // Frames taken out of order leave holes: close them up when they are worth it, or
      // before giving up.
      // A child never compacts (a rewrite of frames in place that nothing could undo): it grows.
      const dead = this.inChild ? 0 : header[DEAD_BYTES];
      if (dead > 0 && (dead >= capacity / 4 || capacity >= MAX_BYTES)) {
        this.#compact();
        continue;
      }
      if (capacity >= MAX_BYTES) return -1;
      let grown = capacity * 2;
      while (grown < capacity + need) grown *= 2;
      this.#grow(Math.min(MAX_BYTES, grown));
    }
  }

  /**
   * Grows the ring to `capacity` bytes (at least twice its size); a wrapped
   * ring moves its older run to the new end, which it cannot overlap.
   */
  #grow(capacity: number): void {
    const header = this.header;
    const old = header[CAPACITY];
    // Mapped data is already MAX_BYTES long: only a SharedArrayBuffer grows.
    if (this.#data.byteLength < capacity) (this.#data as SharedArrayBuffer).grow(capacity);
    const head = header[HEAD];
    let n = 0;
    if (header[COUNT] > 0 && header[TAIL] <= head) {
      this.#bytes.copyWithin(head + (capacity - old), head, old);
      // The index follows the frames that moved.
      if (this.inChild && this.#index !== undefined) this.#logUndo(MOVED, head, capacity - old, 0);
      this.#moveEntries((at) => at >= head ? at + (capacity - old) : at);
      this.#note(n++, HEAD, head + (capacity - old));
    }
    this.#note(n++, CAPACITY, capacity);
    this.#commit(n);
  }

  /** Writes the frame at `at`; returns its size. Lock held, room checked. */
  #writeFrame(at: number, item: unknown, payload: Payload | undefined): number {
    const ints = this.#ints;
    if (payload !== undefined) {
      const bytes = payload.bytes;
      ints[at >> 2] = (bytes.length << TAG_BITS) | payload.tag;
      this.#bytes.set(bytes, at + 4);
      return 4 + align4(bytes.length);
    }
    switch (typeof item) {
      case "number":
        if (isSmallInt(item)) {
          ints[at >> 2] = (item << TAG_BITS) | SMALL_INT;
          return 4;
        }
        ints[at >> 2] = FLOAT;
        this.#view.setFloat64(at + 4, item, true);
        return 12;
      case "string": {
        const start = at + 4;
        const { written } = ENCODER.encodeInto(
          item,
          this.#bytes.subarray(start, start + item.length * 3),
        );
        ints[at >> 2] = (written << TAG_BITS) | STRING;
        return 4 + align4(written);
      }
      case "boolean":
        ints[at >> 2] = item ? TRUE : FALSE;
        return 4;
      case "undefined":
        ints[at >> 2] = UNDEFINED;
        return 4;
      default:
        ints[at >> 2] = NULL;
        return 4;
    }
  }

  // ---- get ------------------------------------------------------------------

  /**
   * Takes the oldest item if one is free now, without waiting:
   * {@linkcode NOTHING} when none is.
   *
   * @throws {QueueClosedError} When the queue is closed and empty.
   */
  tryTake(method: string): unknown {
    if (this.inChild) return this.#takeInChild(method);
    if (claimFree(this.itemWords)) return this.take(method);
    if (this.closed && this.size === 0) throw this.closedAndEmpty(method);
    return NOTHING;
  }

  /**
   * The part of a get that may wait, until `deadline` (`timeout` is its
   * length, for messages). A `blocking` caller (`getSync`) looks again for a
   * while before it sleeps.
   *
   * @throws {TimeoutError} When the deadline passes.
   * @throws {QueueClosedError} When the queue is closed and empty.
   * @throws The signal's reason when it is aborted.
   */
  *getSteps(
    deadline: Deadline,
    timeout: number,
    signal: AbortSignal | undefined,
    method: string,
    blocking: boolean,
  ): WaitSteps<unknown> {
    if (this.inChild) {
      const item = yield* waitOutsideSteps(
        this.itemWords,
        () => this.#takeInChild(method),
        deadline,
        signal,
      );
      if (item === NONE) throw this.timedOut(method, timeout);
      return item;
    }
    for (;;) {
      if (!(yield* this.#claimSteps(this.itemWords, deadline, signal, blocking))) {
        throw this.timedOut(method, timeout);
      }
      const item = this.take(method);
      if (item !== NOTHING) return item;
    }
  }

  /**
   * Whether an item is there for a get (or the queue is closed, so that a
   * get answers at once), waiting for one until `deadline`; takes nothing.
   * A `blocking` caller looks again for a while before it sleeps.
   */
  *pollSteps(
    deadline: Deadline,
    signal: AbortSignal | undefined,
    blocking: boolean,
  ): WaitSteps<boolean> {
    const words = this.itemWords;
    if (this.inChild) {
      const free = () =>
        this.closed || Atomics.load(words, PERMITS) > 0 ||
        (Atomics.load(words, PERMITS) === 0 && Atomics.load(words, LOOSE) > 0) || NONE;
      if ((yield* waitOutsideSteps(words, free, deadline, signal)) === NONE) return false;
      // It took nothing: the wake-up it may have had goes on to a get waiting outside.
      signalOutside(words);
      return true;
    }
    if (!(yield* this.#claimSteps(words, deadline, signal, blocking))) return false;
    // Given back: the item stays for a get.
    this.#give(words);
    return true;
  }

  /**
   * A claim of a permit of `words` (ITEMS or SPACE) in this process, in
   * line when none is free; `false` when the deadline passes first.
   */
  *#claimSteps(
    words: Int32Array,
    deadline: Deadline,
    signal: AbortSignal | undefined,
    blocking: boolean,
  ): WaitSteps<boolean> {
    return claimFree(words) || (blocking && spin(words)) ||
      (yield* acquireSteps(words, deadline, signal, true));
  }

  /**
   * Reads and removes the oldest item; the caller holds an ITEMS permit.
   * {@linkcode NOTHING} when the ring is empty and open: the permit was a
   * spare given back twice after a child died, and is dropped.
   *
   * @throws {QueueClosedError} When the queue is closed and empty (the permit
   *   goes back for the next caller).
   */
  take(method: string): unknown {
    this.lock();
    let found: boolean;
    try {
      found = this.#takeFrame(method, IDLE);
    } finally {
      this.unlock();
    }
    if (!found) return NOTHING;
    this.#tookItem();
    return this.#decodeTaken();
  }

  /** A child's take: claims a free permit, takes and gives back, all under the lock. */
  #takeInChild(method: string): unknown {
    const header = this.header;
    let found = false;
    this.lock();
    try {
      header[STEP] = CLAIMING_ITEM;
      if (claimFree(this.itemWords)) {
        found = this.#takeFrame(method, TOOK_ITEM);
        if (found) this.#tookItem();
      } else if (header[CLOSED] !== 0 && header[COUNT] === 0) {
        throw this.closedAndEmpty(method);
      }
    } finally {
      // (An op that threw, on memory something else overwrote, leaves no undo records.)
      header[LOGGED] = 0;
      header[STEP] = IDLE;
      this.unlock();
    }
    return found ? this.#decodeTaken() : NOTHING;
  }

  /** After a frame is taken: wakes puts waiting for bytes, gives its place back. */
  #tookItem(): void {
    if (this.#wakeRoom) {
      this.#wakeRoom = false;
      notify(this.header, ROOM_SEQ);
    }
    this.giveBackSpace();
  }

  /** The item of the frame {@linkcode Ring.#takeFrame} read, decoded (outside the lock). */
  #decodeTaken(): unknown {
    const tag = this.#tag;
    let value = this.#value;
    const copy = this.#copy;
    this.#value = undefined;
    this.#copy = undefined;
    if (copy !== undefined) value = tag === SERIALIZED ? deserialize(copy) : DECODER.decode(copy);
    return tag === JSON_TEXT ? JSON.parse(value as string) : value;
  }

  /**
   * Reads and removes the first frame into `#tag`, `#value` and `#copy`,
   * leaving STEP `step` once done; `false` when there is none and the queue
   * is open (the permit held is dropped). Lock held.
   *
   * @throws {QueueClosedError} When the queue is closed and empty (the permit goes back).
   */
  #takeFrame(method: string, step: number): boolean {
    const header = this.header;
    const count = header[COUNT];
    if (count === 0) {
      if (header[CLOSED] === 0) return false;
      this.#give(this.itemWords);
      throw this.closedAndEmpty(method);
    }
    const head = this.#index === undefined ? header[HEAD] : this.#pop(count);
    const word = this.#ints[head >> 2];
    const tag = word & TAG_MASK;
    this.#tag = tag;
    let size = 4;
    switch (tag) {
      case UNDEFINED:
        this.#value = undefined;
        break;
      case NULL:
        this.#value = null;
        break;
      case FALSE:
        this.#value = false;
        break;
      case TRUE:
        this.#value = true;
        break;
      case SMALL_INT:
        this.#value = word >> TAG_BITS;
        break;
      case FLOAT:
        this.#value = this.#view.getFloat64(head + 4, true);
        size = 12;
        break;
      case STRING:
      case JSON_TEXT:
      case SERIALIZED: {
        const length = word >>> TAG_BITS;
        const bytes = this.#bytes.subarray(head + 4, head + 4 + length);
        if (tag !== SERIALIZED && length <= DECODE_IN_PLACE) this.#value = DECODER.decode(bytes);
        else this.#copy = bytes.slice();
        size = 4 + align4(length);
        break;
      }
      default:
        throw new Error(`queue: unknown frame tag ${tag} at byte ${head}`);
    }
    let n = 0;
    this.#note(n++, COUNT, count - 1);
    this.#note(n++, STEP, step);
    if (count === 1) {
      // Where HEAD and TAIL point does not matter once COUNT is 0: the next put resets them.
      if (header[DEAD_BYTES] !== 0) this.#note(n++, DEAD_BYTES, 0);
    } else if (this.#index === undefined || head === header[HEAD]) {
      this.#note(n++, HEAD, this.#nextLive(head + size));
      // The dead frames HEAD passed are gone.
      if (this.#passed !== 0) this.#note(n++, DEAD_BYTES, header[DEAD_BYTES] - this.#passed);
    } else if (head + size === header[TAIL]) {
      // The newest frame (a LifoQueue's usual get): its bytes are free again at once.
      this.#note(n++, TAIL, head);
    } else {
      // Taken out of order: the frame stays, dead, until HEAD passes it or a compaction.
      if (this.inChild) this.#logUndo(FRAME_WORD, head, this.#ints[head >> 2], 0);
      this.#ints[head >> 2] = (size << TAG_BITS) | DEAD;
      this.#note(n++, DEAD_BYTES, header[DEAD_BYTES] + size);
    }
    this.#commit(n);
    if (count === 1) {
      header[HEAD] = 0;
      header[TAIL] = 0;
    }
    if (header[ROOM_SLEEPERS] > 0) {
      Atomics.add(header, ROOM_SEQ, 1);
      this.#wakeRoom = true;
    }
    return true;
  }

  /** The error of a take from a closed, empty queue; `method` as `"get()"`. */
  closedAndEmpty(method: string): QueueClosedError {
    return new QueueClosedError(`${this.label}.${method}: the queue is closed and empty`);
  }

  /**
   * The offset of the first live frame from `at` on: skips the end of the
   * ring, a WRAP word and dead frames (their bytes in `#passed`, for the
   * caller to note). Lock held; a live frame remains.
   */
  #nextLive(at: number): number {
    const header = this.header;
    const ints = this.#ints;
    this.#passed = 0;
    for (let steps = this.#maxSteps();; this.#step(steps--)) {
      if (at >= header[CAPACITY] || (ints[at >> 2] & TAG_MASK) === WRAP) at = 0;
      const word = ints[at >> 2];
      if ((word & TAG_MASK) !== DEAD) return at;
      const size = word >>> TAG_BITS;
      this.#passed += size;
      at += size;
    }
  }

  /** The most frames a walk of the ring can meet: more, and something else wrote in it. */
  #maxSteps(): number {
    return (this.header[CAPACITY] >> 2) + 2;
  }

  /**
   * One step of a walk with `steps` left.
   *
   * @throws {Error} When none is left: the ring's memory holds what no
   *   queue wrote (a child with FFI can write anything there).
   */
  #step(steps: number): void {
    if (steps <= 0) throw this.#corrupt("a walk of its frames never ends");
  }

  /** The error for a ring whose words no queue could have written. */
  #corrupt(what: string): Error {
    return new Error(`${this.label}: its shared memory was overwritten (${what})`);
  }

  /** The bytes of the frame at `at`. */
  #frameSize(at: number): number {
    const word = this.#ints[at >> 2];
    switch (word & TAG_MASK) {
      case FLOAT:
        return 12;
      case STRING:
      case JSON_TEXT:
      case SERIALIZED:
        return 4 + align4(word >>> TAG_BITS);
      case DEAD:
        return word >>> TAG_BITS;
      default:
        return 4;
    }
  }

  /**
   * Moves the live frames of an ordered ring together at the start, dropping
   * the dead ones, and points the index at their new places. Lock held.
   */
  #compact(): void {
    const header = this.header;
    const count = header[COUNT];
    const capacity = header[CAPACITY];
    const kept = new Uint8Array(capacity - header[DEAD_BYTES]);
    const moved = new Map<number, number>();
    let at = header[HEAD];
    let out = 0;
    for (let live = 0, steps = this.#maxSteps(); live < count; this.#step(steps--)) {
      if (at >= capacity || (this.#ints[at >> 2] & TAG_MASK) === WRAP) {
        at = 0;
        continue;
      }
      const size = this.#frameSize(at);
      if ((this.#ints[at >> 2] & TAG_MASK) !== DEAD) {
        kept.set(this.#bytes.subarray(at, at + size), out);
        moved.set(at, out);
        out += size;
        live++;
      }
      at += size;
    }
    this.#bytes.set(kept.subarray(0, out), 0);
    header[HEAD] = 0;
    header[TAIL] = out;
    header[DEAD_BYTES] = 0;
    this.#moveEntries((offset) => moved.get(offset)!);
  }

  /** Rewrites the frame offset of every index entry. Lock held. */
  #moveEntries(move: (offset: number) => number): void {
    const index = this.#index;
    if (index === undefined) return;
    for (let i = 0, n = this.header[COUNT]; i < n; i++) {
      index[i * ENTRY + 2] = move(index[i * ENTRY + 2]);
    }
  }

  /** Whether the index has an entry free for one more item, growing it if it may. Lock held. */
  #indexRoom(): boolean {
    const buffer = this.#indexBuffer!;
    const need = LOG_BYTES + (this.header[COUNT] + 1) * ENTRY * 8;
    if (need <= buffer.byteLength) return true;
    // Mapped memory holds MAX_ENTRIES from the start, and does not grow.
    if (!(buffer instanceof SharedArrayBuffer) || need > buffer.maxByteLength) return false;
    buffer.grow(Math.min(buffer.maxByteLength, Math.max(buffer.byteLength * 2, need)));
    return true;
  }

  /** Adds the frame at `at` to the index, as the newest item. Lock held, room checked. */
  #push(priority: number, at: number): void {
    const header = this.header;
    const index = this.#index!;
    const seq = header[SEQ_HI] * 2 ** 32 + (header[SEQ_LO] >>> 0);
    if (header[SEQ_LO] === -1) header[SEQ_HI]++;
    header[SEQ_LO] = (header[SEQ_LO] + 1) | 0;
    // LIFO: the newest first, so the key is the sequence number, negated.
    const key = header[ORDER] === LIFO ? -seq : priority;
    let i = header[COUNT];
    // Sift up: it is the newest, so an equal key stays below (its sequence number is larger).
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = parent * ENTRY;
      if (!(key < index[p])) break;
      this.#logEntry(i);
      index.copyWithin(i * ENTRY, p, p + ENTRY);
      i = parent;
    }
    this.#logEntry(i);
    index[i * ENTRY] = key;
    index[i * ENTRY + 1] = seq;
    index[i * ENTRY + 2] = at;
  }

  /** Removes the first item of the index (of `count`) and returns its frame's offset. Lock held. */
  #pop(count: number): number {
    const index = this.#index!;
    const at = index[2];
    const last = (count - 1) * ENTRY;
    const key = index[last];
    const seq = index[last + 1];
    const offset = index[last + 2];
    const size = count - 1;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      const c = child * ENTRY;
      const d = c + ENTRY;
      if (
        child + 1 < size &&
        (index[d] < index[c] || (index[d] === index[c] && index[d + 1] < index[c + 1]))
      ) {
        child++;
      }
      const x = child * ENTRY;
      if (!(index[x] < key || (index[x] === key && index[x + 1] < seq))) break;
      this.#logEntry(i);
      index.copyWithin(i * ENTRY, x, x + ENTRY);
      i = child;
    }
    this.#logEntry(i);
    index[i * ENTRY] = key;
    index[i * ENTRY + 1] = seq;
    index[i * ENTRY + 2] = offset;
    return at;
  }

  /** The error of a put on a closed queue; `method` as `"put()"`. */
  closedForPut(method: string): QueueClosedError {
    return new QueueClosedError(`${this.label}.${method}: the queue is closed`);
  }

  /** The error of a wait that ran out of time; `method` as `"get()"`. */
  timedOut(method: string, timeout: number): TimeoutError {
    return timedOut(`${this.label}.${method}`, timeout);
  }

  // ---- close ----------------------------------------------------------------

  /** Closes the ring and wakes every waiting put and get; a second call does nothing. */
  close(): void {
    const header = this.header;
    this.lock();
    try {
      if (header[CLOSED] !== 0) return;
      Atomics.store(header, CLOSED, 1);
    } finally {
      this.unlock();
    }
    this.#addSpares();
  }

  /**
   * After close(): one spare permit more than the callers in line, so each of
   * them and every later caller finds one (they give them back), and every
   * sleeper outside the lines woken.
   */
  #addSpares(): void {
    const add = this.inChild ? addLooseSpares : addSpares;
    add(this.itemWords);
    if (this.bounded) add(this.spaceWords);
    this.#wakeAll();
  }

  /**
   * Wakes every caller asleep on the ring, in line or not, to look again
   * (after a child died: it may have died before waking them).
   */
  #wakeAll(): void {
    const header = this.header;
    for (const seq of [ROOM_SEQ, JOIN_SEQ]) {
      Atomics.add(header, seq, 1);
      notify(header, seq);
    }
    wakeEveryone(this.itemWords);
    wakeEveryone(this.spaceWords);
    notify(header, LOCK);
  }

  // ---- a child that died ------------------------------------------------------

  /**
   * Puts the ring right after child process `pid` is gone (the parent calls
   * it for each ring it sent to a child that maps memory). If the child died
   * holding the lock: applies its journal again, gives back the permit its
   * STEP names (a claim it may have made, a place or an item it owed), and
   * frees the lock. Then, on a closed ring, spare permits again (the child
   * may have died closing it), and wakes every sleeper outside the lines.
   */
  recoverFrom(pid: number): void {
    const header = this.header;
    for (;;) {
      const held = Atomics.load(header, LOCK);
      if ((held & ~CONTENDED) !== pid) break;
      // Taken over from the dead holder, so that no one else mends it at the same time.
      if (Atomics.compareExchange(header, LOCK, held, PID | CONTENDED) !== held) continue;
      const noted = header[NOTED];
      if (noted > 0) {
        this.#apply(Math.min(noted, MAX_NOTES));
        header[LOGGED] = 0;
      } else {
        this.#undo();
      }
      header[NOTED] = 0;
      const step = header[STEP];
      header[STEP] = IDLE;
      if (step === CLAIMING_ITEM || step === WROTE_ITEM) this.#give(this.itemWords);
      if (step === CLAIMING_SPACE || step === TOOK_ITEM) this.giveBackSpace();
      this.unlock();
      break;
    }
    if (this.closed) this.#addSpares();
    else this.#wakeAll();
  }

  // ---- join -----------------------------------------------------------------

  /**
   * Marks one item done.
   *
   * @throws {RangeError} When no item is unfinished.
   */
  taskDone(): void {
    const header = this.header;
    let unfinished: number;
    this.lock();
    try {
      unfinished = header[UNFINISHED];
      if (unfinished <= 0) {
        throw new RangeError(
          "Cannot call JoinableQueue.taskDone(): it was called more times than items were put",
        );
      }
      Atomics.store(header, UNFINISHED, unfinished - 1);
    } finally {
      this.unlock();
    }
    if (unfinished === 1) {
      Atomics.add(header, JOIN_SEQ, 1);
      if (Atomics.load(header, JOINERS) > 0) notify(header, JOIN_SEQ);
    }
  }

  /** Items put and not yet marked done (JoinableQueue). */
  get unfinished(): number {
    return Atomics.load(this.header, UNFINISHED);
  }

  /**
   * Waits until every item put has been marked done: `true`, or `false` when
   * `timeout` passes first. Throws the signal's reason on abort.
   */
  *joinSteps(timeout: number, signal: AbortSignal | undefined): WaitSteps<boolean> {
    const header = this.header;
    const deadline = new Deadline(timeout);
    // Counted before reading JOIN_SEQ, so a taskDone that ends the work sees us and notifies.
    Atomics.add(header, JOINERS, 1);
    try {
      for (;;) {
        const seen = Atomics.load(header, JOIN_SEQ);
        if (Atomics.load(header, UNFINISHED) === 0) return true;
        const remaining = deadline.remaining();
        if (remaining === 0) return false;
        const reason = yield {
          words: header,
          index: JOIN_SEQ,
          expected: seen,
          timeout: remaining,
          signal,
        };
        if (reason === "aborted") throw abortReason(signal);
      }
    } finally {
      Atomics.sub(header, JOINERS, 1);
    }
  }
}

/**
 * Adds one spare permit more than the callers in line, so each of them and
 * every later caller finds one; the callers give them back. One
 * compareExchange, then one grant for the whole line.
 */
function addSpares(words: Int32Array): void {
  let count = Atomics.load(words, PERMITS);
  for (;;) {
    const seen = Atomics.compareExchange(words, PERMITS, count, Math.max(count, 0) + 1);
    if (seen === count) break;
    count = seen;
  }
  if (count < 0) {
    Atomics.add(words, OPEN, -count);
    Atomics.add(words, WAKE, 1);
    notify(words, WAKE);
  }
}

/** {@linkcode addSpares} from a child: as LOOSE permits, in one atomic step. */
function addLooseSpares(words: Int32Array): void {
  Atomics.add(words, LOOSE, Math.max(1, 1 - Atomics.load(words, PERMITS)));
  Atomics.add(words, WAKE, 1);
  notify(words, WAKE);
}
