/**
 * The framed channel between a parent and a child process, over the child's
 * own pipes: the parent writes to the child's stdin, the child to its stdout.
 *
 * ```text
 *   frame:  MAGIC (4 bytes)  length (u32 LE)  format (1 byte)  body (length - 1 bytes)
 *           FF C0 FE C1                        "J" JSON | "V" node:v8
 * ```
 *
 * A task's own output shares the child's stdout with the frames: what it
 * prints (`console.log`, `Deno.stdout`) goes straight to fd 1 between two
 * frames, since the child writes each frame with one synchronous call. The
 * reader passes every byte outside a frame through as output, in order. The
 * magic bytes never occur in UTF-8 text, so printed text never looks like a
 * frame.
 *
 * A message goes as JSON when JSON carries it exactly, else as its
 * `node:v8` serialization (Map, Set, Date, BigInt, typed arrays, errors…).
 * `node:v8` costs a child about 15 ms to load, so a child loads it only when
 * a message first needs it ({@linkcode loadV8}); the parent provides it at once.
 *
 * What a child sends is untrusted, so reading trusts no length: a frame over
 * {@linkcode MAX_FRAME} ends the stream before its body is read, the buffer
 * grows only as bytes arrive, and a frame that does not decode, or JSON
 * nested deeper than any honest sender writes, ends it too, with a
 * {@linkcode FrameError} that says why.
 *
 * @module
 */

import type * as V8 from "node:v8";
import { SerializationError } from "../errors.ts";
import { jsonExact } from "../internal/codec.ts";

/** The most bytes one message between processes may take, encoded: 256 MiB. */
export const MAX_FRAME = 256 * 1024 * 1024;

/** The bytes every frame starts with: none of them can occur in UTF-8 text. */
const MAGIC: Uint8Array = Uint8Array.of(0xff, 0xc0, 0xfe, 0xc1);

/** Magic and length. */
const HEADER = 8;

/** {@linkcode FrameReader}: the rest of a frame has not arrived. */
const MORE = Symbol("more");

/** The deepest JSON a reader accepts; the encoder writes at most 34 levels. */
const MAX_JSON_DEPTH = 64;

/** The stream carried something that is not a frame of this channel. */
export class FrameError extends Error {}

let v8: typeof V8 | undefined;
let loadingV8: Promise<typeof V8> | undefined;

/** Gives the channel `node:v8` (the parent, which has loaded it anyway). */
export function provideV8(module: typeof V8): void {
  v8 = module;
}

/** Loads `node:v8` for a child the first time a message needs it. */
function loadV8(): Promise<typeof V8> {
  return loadingV8 ??= import("node:v8").then((module) => v8 = module);
}

/**
 * Encodes a message as a whole frame. Throws a `SerializationError` when it
 * is too large, a `DataCloneError` when it cannot be serialized, and an
 * `Error` if it needs `node:v8` before that has loaded.
 */
export function encodeFrame(message: unknown): Uint8Array {
  const frame = encodeIfReady(message);
  if (frame === undefined) throw new Error("node:v8 is not loaded yet");
  return frame;
}

/** As {@linkcode encodeFrame}, but `undefined` when the message needs `node:v8` not loaded yet. */
function encodeIfReady(message: unknown): Uint8Array | undefined {
  if (jsonExact(message, 0, new Set())) {
    const frame = jsonFrame(JSON.stringify(message));
    // JSON writes a control character as six bytes: `node:v8` may fit where it does not.
    if (frame !== undefined) return frame;
  }
  if (v8 === undefined) return undefined;
  const body = v8.serialize(message);
  if (body.byteLength + 1 > MAX_FRAME) {
    throw new SerializationError(
      `Cannot send a message of ${body.byteLength + 1} bytes between processes: ` +
        `the limit is ${MAX_FRAME} bytes (256 MiB)`,
    );
  }
  const frame = header(V8_FRAME, body.byteLength);
  frame.set(body, HEADER + 1);
  return frame;
}

/** A JSON frame of `text`, or `undefined` when it would be over the limit. */
function jsonFrame(text: string): Uint8Array | undefined {
  if (text.length + 1 > MAX_FRAME) return undefined;
  // Most JSON is ASCII, one byte per character: encoded in place, with no copy.
  const frame = header(JSON_FRAME, text.length);
  if (encoder.encodeInto(text, frame.subarray(HEADER + 1)).read === text.length) return frame;
  const body = encoder.encode(text);
  if (body.byteLength + 1 > MAX_FRAME) return undefined;
  const wide = header(JSON_FRAME, body.byteLength);
  wide.set(body, HEADER + 1);
  return wide;
}

/** A frame with its header written and room for a body of `length` bytes. */
function header(format: number, length: number): Uint8Array {
  const frame = new Uint8Array(HEADER + 1 + length);
  frame.set(MAGIC);
  new DataView(frame.buffer).setUint32(4, length + 1, true);
  frame[HEADER] = format;
  return frame;
}

/** What a {@linkcode FrameReader} reads from: the next chunk of bytes, or `null` at the end. */
export type ReadChunk = () => Promise<Uint8Array | null>;

/** A buffer grown for a large frame is let go once empty, above this size. */
const KEEP_BUFFER = 1024 * 1024;

/** Reads whole messages from a stream of chunks, and passes other bytes through. */
export class FrameReader<In> {
  readonly #read: ReadChunk;
  readonly #passThrough?: (bytes: Uint8Array) => void | Promise<void>;
  #buffer = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  #chunks = 0;
  #passing = false;

  /**
   * @param read Gives the next chunk of the stream.
   * @param passThrough Receives the bytes outside frames (a child's own
   *   output), in order; nothing more is read until a promise it returns
   *   settles. Without it, such bytes are an error.
   */
  constructor(read: ReadChunk, passThrough?: (bytes: Uint8Array) => void | Promise<void>) {
    this.#read = read;
    this.#passThrough = passThrough;
  }

  /** Whether a frame's header has arrived and the rest of the frame has not. */
  get midFrame(): boolean {
    return this.#end - this.#start >= MAGIC.length && this.#startsWithMagic();
  }

  /** How many chunks have been read: the stream's progress. */
  get chunks(): number {
    return this.#chunks;
  }

  /** Whether the reader waits for output it passed through to be written. */
  get passing(): boolean {
    return this.#passing;
  }

  /**
   * Delivers each message to `handler` until the stream ends. All the
   * messages one chunk brings are delivered in order, before the next chunk
   * is read. Rejects with a {@linkcode FrameError} when the stream carries
   * something else; the handler gets nothing after that.
   */
  async listen(handler: (message: In, bytes: number) => void): Promise<void> {
    while (true) {
      while (this.#end > this.#start) {
        const taken = this.#next();
        if (taken === MORE) break;
        if (taken instanceof Uint8Array) {
          await this.#emit(taken);
          continue;
        }
        const [format, body] = taken;
        if (format === V8_FRAME && v8 === undefined) await loadV8();
        handler(decodeFrame(format, body) as In, body.byteLength + 1);
      }
      const chunk = await this.#read();
      if (chunk === null) {
        // The start of a marker that never finished was output after all; a frame cut short
        // by the child's death is dropped.
        if (!this.midFrame) await this.#emit(this.#buffer.slice(this.#start, this.#end));
        return;
      }
      this.#chunks++;
      this.#append(chunk);
    }
  }

  /**
   * Takes the next frame off the buffer; or the bytes before the next
   * possible frame, which are output; or says the rest of the frame has not
   * arrived ({@linkcode MORE}).
   */
  #next(): [number, Uint8Array] | Uint8Array | typeof MORE {
    const buffer = this.#buffer;
    if (!this.#startsWithMagic()) {
      const next = buffer.subarray(this.#start + 1, this.#end).indexOf(MAGIC[0]);
      const stop = next < 0 ? this.#end : this.#start + 1 + next;
      const output = buffer.slice(this.#start, stop);
      this.#start = stop;
      return output;
    }
    if (this.#end - this.#start < HEADER) return MORE;
    const length = new DataView(buffer.buffer, buffer.byteOffset + this.#start + 4, 4)
      .getUint32(0, true);
    if (length > MAX_FRAME || length === 0) {
      throw new FrameError(
        `a frame of ${length} bytes (the limit is ${MAX_FRAME}, at least 1; a task that ` +
          `writes binary data to stdout may have written the frame marker FF C0 FE C1)`,
      );
    }
    if (this.#end - this.#start < HEADER + length) return MORE;
    const format = buffer[this.#start + HEADER];
    const body = buffer.subarray(this.#start + HEADER + 1, this.#start + HEADER + length);
    this.#start += HEADER + length;
    return [format, body];
  }

  /** Whether the buffer holds the magic at the start, or as much of it as has arrived. */
  #startsWithMagic(): boolean {
    for (let i = 0; i < MAGIC.length && this.#start + i < this.#end; i++) {
      if (this.#buffer[this.#start + i] !== MAGIC[i]) return false;
    }
    return true;
  }

  async #emit(bytes: Uint8Array): Promise<void> {
    if (bytes.byteLength === 0) return;
    if (this.#passThrough === undefined) {
      throw new FrameError(`${bytes.byteLength} bytes that are not a frame`);
    }
    this.#passing = true;
    try {
      await this.#passThrough(bytes);
    } finally {
      this.#passing = false;
    }
  }

  /** Appends a chunk, growing the buffer with what has arrived, never with what a length claims. */
  #append(chunk: Uint8Array): void {
    const kept = this.#end - this.#start;
    if (kept === 0 && this.#buffer.byteLength > KEEP_BUFFER) {
      this.#buffer = new Uint8Array(64 * 1024);
      this.#start = this.#end = 0;
    }
    if (this.#start > 0 && (kept === 0 || this.#end + chunk.byteLength > this.#buffer.byteLength)) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
      this.#start = 0;
      this.#end = kept;
    }
    if (this.#end + chunk.byteLength > this.#buffer.byteLength) {
      const next = new Uint8Array(Math.max(this.#buffer.byteLength * 2, kept + chunk.byteLength));
      next.set(this.#buffer.subarray(0, this.#end));
      this.#buffer = next;
    }
    this.#buffer.set(chunk, this.#end);
    this.#end += chunk.byteLength;
  }
}

/** Writes whole frames to a `WritableStream` (a child's stdin), one write per turn of the event loop. */
export class FrameSender<Out> {
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  /** Bytes handed to the stream and not yet written. */
  #writingBytes = 0;
  #scheduled = false;
  #closed = false;

  constructor(writer: WritableStreamDefaultWriter<Uint8Array>) {
    this.#writer = writer;
  }

  /** Bytes sent and not yet written: grows while the far side does not read. */
  get backlog(): number {
    return this.#pendingBytes + this.#writingBytes;
  }

  /**
   * Queues a message; it is written at the end of this turn. Throws at once
   * if the message cannot be serialized.
   */
  send(message: Out): void {
    if (this.#closed) return;
    const frame = encodeFrame(message);
    this.#pending.push(frame);
    this.#pendingBytes += frame.byteLength;
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#pending.length === 0 || this.#closed) return;
    const bytes = concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#writingBytes += bytes.byteLength;
    this.#writer.write(bytes).then(
      () => this.#writingBytes -= bytes.byteLength,
      () => this.close(),
    );
  }

  /** Closes the stream once what was sent has been written; later sends are dropped. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#flush();
      this.#closed = true;
    }
    return this.#writer.close().catch(() => {});
  }
}

/** A message waiting for `node:v8` to load. */
interface Deferred<Out> {
  message: Out;
}

/**
 * Writes whole frames to a child's stdout with synchronous writes: once
 * {@linkcode FrameWriter.writeNow} returns, what was sent is in the pipe, and
 * survives the child's death. Messages sent in one turn go out in one write
 * at its end, unless `writeNow` sends them sooner.
 */
export class FrameWriter<Out> {
  readonly #writeSync: (bytes: Uint8Array) => number;
  readonly #repair: (message: Out, error: unknown) => Out | undefined;
  readonly #queue: (Uint8Array | Deferred<Out>)[] = [];
  #bytes = 0;
  #deferred = 0;
  #scheduled = false;

  /**
   * @param writeSync Writes some of the bytes at once; returns how many (`Deno.stdout.writeSync`).
   * @param repair What to send instead of a message that had to wait for
   *   `node:v8` and then could not be serialized (or nothing).
   */
  constructor(
    writeSync: (bytes: Uint8Array) => number,
    repair: (message: Out, error: unknown) => Out | undefined,
  ) {
    this.#writeSync = writeSync;
    this.#repair = repair;
  }

  /**
   * Queues a message. Throws at once if it cannot be serialized, except when
   * it must wait for `node:v8` to load (see `repair`).
   */
  send(message: Out): void {
    // One walk of the message: encoded now, or kept until node:v8 has loaded.
    const frame = this.#deferred === 0 ? encodeIfReady(message) : undefined;
    if (frame !== undefined) {
      this.#queue.push(frame);
      this.#bytes += frame.byteLength;
    } else {
      this.#queue.push({ message });
      this.#deferred++;
      loadV8();
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => {
        this.#scheduled = false;
        this.writeNow();
      });
    }
  }

  /**
   * Writes everything sent so far. Returns a promise, resolved once written,
   * only when a message had to wait for `node:v8`.
   */
  writeNow(): void | Promise<void> {
    if (this.#deferred === 0) return this.#write();
    return loadV8().then(() => {
      for (let i = 0; i < this.#queue.length; i++) {
        const entry = this.#queue[i];
        if (entry instanceof Uint8Array) continue;
        const frame = this.#encodeDeferred(entry);
        this.#queue[i] = frame;
        this.#bytes += frame.byteLength;
        this.#deferred--;
      }
      this.#write();
    });
  }

  #encodeDeferred({ message }: Deferred<Out>): Uint8Array {
    try {
      return encodeFrame(message);
    } catch (error) {
      const instead = this.#repair(message, error);
      return instead === undefined ? new Uint8Array(0) : encodeFrame(instead);
    }
  }

  #write(): void {
    if (this.#queue.length === 0) return;
    const bytes = concat(this.#queue as Uint8Array[], this.#bytes);
    this.#queue.length = 0;
    this.#bytes = 0;
    let offset = 0;
    while (offset < bytes.byteLength) offset += this.#writeSync(bytes.subarray(offset));
  }
}

const JSON_FRAME = 0x4a; // "J"
const V8_FRAME = 0x56; // "V"
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function decodeFrame(format: number, body: Uint8Array): unknown {
  if (format === JSON_FRAME) {
    if (!jsonWithin(body, MAX_JSON_DEPTH)) {
      throw new FrameError(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
    }
    try {
      return JSON.parse(decoder.decode(body));
    } catch (error) {
      throw new FrameError(`a frame that does not decode (${(error as Error).message})`);
    }
  }
  if (format !== V8_FRAME) {
    throw new FrameError(`a frame that does not decode (format ${format})`);
  }
  try {
    // A copy: typed arrays in the message are views on the bytes they came from, and the
    // reader reuses its buffer for the frames that follow.
    return v8!.deserialize(body.slice());
  } catch (error) {
    // A stack overflow here is data nested too deep to rebuild.
    throw new FrameError(`a frame that does not decode (${(error as Error).message})`);
  }
}

/** Whether the JSON text `bytes` nests at most `limit` arrays and objects deep. */
function jsonWithin(bytes: Uint8Array, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    if (inString) {
      if (byte === 0x5c) i++; // backslash: skip the escaped byte
      else if (byte === 0x22) inString = false;
    } else if (byte === 0x22) {
      inString = true;
    } else if (byte === 0x5b || byte === 0x7b) {
      if (++depth > limit) return false;
    } else if (byte === 0x5d || byte === 0x7d) {
      depth--;
    }
  }
  return true;
}

/** Joins `chunks` (`total` bytes) into one array; one chunk is returned as it is. */
function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
