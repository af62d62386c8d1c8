/**
 * The framed channel between a parent and a child process: each message is a
 * 4-byte little-endian length, a format byte, and the message: JSON when that
 * carries it exactly, else its `node:v8` serialization, so Map, Set, Date,
 * BigInt, typed arrays and errors cross intact. Messages sent in one turn of
 * the event loop go out in one write.
 *
 * What a child sends is untrusted, so reading trusts no length: a frame over
 * {@linkcode MAX_FRAME} ends the stream before its body is read, the buffer
 * grows only as bytes arrive, and a frame that does not decode, or JSON
 * nested deeper than any honest sender writes, ends it too, with a
 * {@linkcode FrameError} that says why.
 *
 * @module
 */

import { deserialize, serialize } from "node:v8";
import { SerializationError } from "../errors.ts";

/** The most bytes one message between processes may take, encoded: 256 MiB. */
export const MAX_FRAME = 256 * 1024 * 1024;

/** The deepest JSON a reader accepts; the encoder writes at most 34 levels. */
const MAX_JSON_DEPTH = 64;

/** The stream carried something that is not a frame of this channel. */
export class FrameError extends Error {}

/** A bidirectional byte stream: a `Deno.Conn`. */
export interface ByteStream {
  read(buffer: Uint8Array): Promise<number | null>;
  write(bytes: Uint8Array): Promise<number>;
  close(): void;
}

/** Sends and receives whole messages over a {@linkcode ByteStream}. */
export class FrameChannel<In, Out> {
  readonly #stream: ByteStream;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  /** Bytes handed to the stream and not yet written. */
  #writingBytes = 0;
  #writing: Promise<void> = Promise.resolve();
  #scheduled = false;
  #closed = false;
  /** The longest frame `listen` accepts; a connection that has not proved itself gets less. */
  maxFrame: number;

  /**
   * @param stream The connection to frame.
   * @param maxFrame The longest frame `listen` accepts (default {@linkcode MAX_FRAME}).
   */
  constructor(stream: ByteStream, maxFrame = MAX_FRAME) {
    this.#stream = stream;
    this.maxFrame = maxFrame;
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
    const body = encodeFrame(message);
    const frame = new Uint8Array(4 + body.byteLength);
    new DataView(frame.buffer).setUint32(0, body.byteLength, true);
    frame.set(body, 4);
    this.#pending.push(frame);
    this.#pendingBytes += frame.byteLength;
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#pending.length === 0) return;
    const bytes = this.#pending.length === 1
      ? this.#pending[0]
      : concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#writingBytes += bytes.byteLength;
    this.#writing = this.#writing.then(() => this.#writeAll(bytes)).catch(() => this.close());
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    try {
      while (offset < bytes.byteLength && !this.#closed) {
        offset += await this.#stream.write(bytes.subarray(offset));
      }
    } finally {
      this.#writingBytes -= bytes.byteLength;
    }
  }

  /** Resolves once every queued message has been written. */
  async drained(): Promise<void> {
    this.#flush();
    await this.#writing;
  }

  /**
   * Delivers each message to `handler` until the stream ends. All the
   * messages that one read brings are delivered synchronously, in order, so
   * that the answers they cause leave in one write. Rejects with a
   * {@linkcode FrameError} when the stream carries something else; the
   * handler gets nothing after that.
   */
  async listen(handler: (message: In, bytes: number) => void): Promise<void> {
    let buffer = new Uint8Array(64 * 1024);
    let start = 0;
    let end = 0;
    while (true) {
      while (end - start >= 4) {
        const length = new DataView(buffer.buffer, buffer.byteOffset + start, 4).getUint32(0, true);
        if (length > this.maxFrame || length === 0) {
          throw new FrameError(
            `a frame of ${length} bytes (the limit is ${this.maxFrame}, at least 1)`,
          );
        }
        if (end - start < 4 + length) break;
        const body = buffer.subarray(start + 4, start + 4 + length);
        start += 4 + length;
        handler(decodeFrame(body) as In, length);
      }
      if (start === end) {
        start = 0;
        end = 0;
      }
      if (buffer.byteLength - end < 64 * 1024) {
        // Grow with what has arrived, never with what a length claims.
        const kept = end - start;
        if (kept + 64 * 1024 <= buffer.byteLength) {
          buffer.copyWithin(0, start, end);
        } else {
          const next = new Uint8Array(Math.max(buffer.byteLength * 2, kept + 64 * 1024));
          next.set(buffer.subarray(start, end));
          buffer = next;
        }
        end = kept;
        start = 0;
      }
      let read: number | null;
      try {
        read = await this.#stream.read(buffer.subarray(end));
      } catch {
        read = null;
      }
      if (read === null) return;
      end += read;
    }
  }

  /** Closes the stream; later sends are dropped. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#stream.close();
    } catch {
      // Already closed.
    }
  }
}

const JSON_FRAME = 0x4a; // "J"
const V8_FRAME = 0x56; // "V"
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Encodes a message. Most messages hold only plain data (numbers, strings,
 * arrays of them), and `node:v8` — written in JavaScript in Deno — costs
 * several times more than JSON for those, so a message that JSON carries
 * exactly goes as JSON; anything else (undefined inside, -0, NaN, BigInt,
 * Map, Set, Date, typed arrays, errors…) goes as `node:v8`. The first byte
 * says which.
 */
export function encodeFrame(message: unknown): Uint8Array {
  let json = jsonExact(message, 0, new Set());
  let body = json ? encoder.encode(JSON.stringify(message)) : serialize(message);
  // JSON writes a control character as six bytes: `node:v8` may fit where it does not.
  if (json && body.byteLength + 1 > MAX_FRAME) {
    json = false;
    body = serialize(message);
  }
  if (body.byteLength + 1 > MAX_FRAME) {
    throw new SerializationError(
      `Cannot send a message of ${body.byteLength + 1} bytes between processes: ` +
        `the limit is ${MAX_FRAME} bytes (256 MiB)`,
    );
  }
  const frame = new Uint8Array(body.byteLength + 1);
  frame[0] = json ? JSON_FRAME : V8_FRAME;
  frame.set(body, 1);
  return frame;
}

function decodeFrame(frame: Uint8Array): unknown {
  const body = frame.subarray(1);
  if (frame[0] === JSON_FRAME) {
    if (!jsonWithin(body, MAX_JSON_DEPTH)) {
      throw new FrameError(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
    }
    try {
      return JSON.parse(decoder.decode(body));
    } catch (error) {
      throw new FrameError(`a frame that does not decode (${(error as Error).message})`);
    }
  }
  if (frame[0] !== V8_FRAME) {
    throw new FrameError(`a frame that does not decode (format ${frame[0]})`);
  }
  try {
    return deserialize(body);
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

/**
 * Whether JSON carries `value` exactly. At the top level (the message
 * envelope) a property may be `undefined`: it is left out and reads back as
 * `undefined`. Deeper down, `undefined` needs `node:v8`, and so does an
 * object seen twice (JSON would copy it, v8 keeps it one object) and an
 * array with properties besides its items.
 */
function jsonExact(value: unknown, depth: number, seen: Set<object>): boolean {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(value) && !Object.is(value, -0);
    case "object": {
      if (value === null) return true;
      if (depth > 32 || seen.has(value)) return false;
      seen.add(value);
      if (Array.isArray(value)) {
        if (Object.keys(value).length !== value.length) return false;
        for (let i = 0; i < value.length; i++) {
          if (!(i in value) || !jsonExact(value[i], depth + 1, seen)) return false;
        }
        return true;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false;
      for (const key in value) {
        const item = (value as Record<string, unknown>)[key];
        if (item === undefined && depth === 0) continue;
        if (!jsonExact(item, depth + 1, seen)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
