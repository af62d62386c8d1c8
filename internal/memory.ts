/**
 * Where shared memory comes from: every `sync/` primitive, `Value` and
 * `SharedArray` takes its bytes from {@linkcode sharedBytes}.
 *
 * - **heap**: a `SharedArrayBuffer`. Threads share it; a child process
 *   cannot, so it reaches the object through the parent's broker.
 * - **mapped**: memory from a `memfd` (see `libc.ts`), viewed as a plain
 *   `ArrayBuffer`. Threads view it at its address; a child process that may
 *   use FFI maps the same pages, so it works on the object directly, as a
 *   thread does. Waits on it go through the futex (`wait.ts`).
 *
 * The kind is decided once, on the first allocation: mapped when this
 * program may use FFI on Linux x86-64 ({@linkcode libcAvailable}), heap
 * otherwise. Small objects share 1 MiB mappings; memory handed out is kept
 * for the life of the program (a child or a thread may hold it at any time).
 *
 * A buffer crosses to a thread or a child as a {@linkcode SharedRef}:
 * {@linkcode refOf} on the sending side, {@linkcode bufferOf} on the other.
 *
 * @module
 */

import { createMapping, libcAvailable, mapFrom, viewAt } from "./libc.ts";

/** Which kind of memory this program's shared objects use. */
export type MemoryKind = "heap" | "mapped";

/**
 * Where mapped bytes are: a memory file of process `pid` (this one or its
 * parent), which a thread or a child maps for itself.
 */
export interface MappedBytes {
  /** The process whose memory file holds them. */
  readonly pid: number;
  /** That file's descriptor in that process. */
  readonly fd: number;
  /** The file's size: the length a process maps. */
  readonly fileBytes: number;
  /** Where the bytes start in the file. */
  readonly offset: number;
  /** How many bytes. */
  readonly bytes: number;
}

/** Shared bytes in transit: the `SharedArrayBuffer` itself, or where the mapped bytes are. */
export type SharedRef = SharedArrayBuffer | MappedBytes;

const MAPPING_BYTES = 1 << 20;
/** Every allocation starts on this boundary (enough for a `BigInt64Array`). */
const ALIGN = 16;

let kind: MemoryKind | undefined;
/** The mapping small allocations are cut from, and how much of it is used. */
let current: { fd: number; address: number; used: number } | undefined;
/** Where each mapped buffer's bytes are, and their address here. */
const places = new WeakMap<ArrayBufferLike, { where: MappedBytes; address: number }>();
/** The address at which each memory file is mapped in this thread, by `pid:fd`. */
const mapped = new Map<string, number>();

/** The kind of memory this program uses, decided on the first call. */
export function memoryKind(): MemoryKind {
  return kind ??= libcAvailable() ? "mapped" : "heap";
}

/** Allocates `bytes` of zeroed shared memory of this program's kind. */
export function sharedBytes(bytes: number): SharedArrayBuffer | ArrayBuffer {
  if (memoryKind() === "heap") return new SharedArrayBuffer(bytes);
  const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  if (size > MAPPING_BYTES / 4) return place(createMapping(size), size, 0, bytes);
  if (current === undefined || current.used + size > MAPPING_BYTES) {
    current = { ...createMapping(MAPPING_BYTES), used: 0 };
    mapped.set(`${Deno.pid}:${current.fd}`, current.address);
  }
  const offset = current.used;
  current.used += size;
  return place(current, MAPPING_BYTES, offset, bytes);
}

function place(
  mapping: { fd: number; address: number },
  fileBytes: number,
  offset: number,
  bytes: number,
): ArrayBuffer {
  const where: MappedBytes = { pid: Deno.pid, fd: mapping.fd, fileBytes, offset, bytes };
  const address = mapping.address + offset;
  const buffer = viewAt(address, bytes);
  places.set(buffer, { where, address });
  return buffer;
}

/** Whether `buffer` is mapped memory, which a child with FFI can map. */
export function isMapped(buffer: ArrayBufferLike): boolean {
  return places.has(buffer);
}

/** Where `buffer`'s bytes are, when it is mapped memory. */
export function placeOf(buffer: ArrayBufferLike): MappedBytes | undefined {
  return places.get(buffer)?.where;
}

/** The address of `buffer`'s first byte, for the futex; `undefined` unless it is mapped. */
export function addressOf(buffer: ArrayBufferLike): number | undefined {
  return places.get(buffer)?.address;
}

/**
 * What to send for `buffer`: itself when it is a `SharedArrayBuffer`, where
 * its bytes are when it is mapped.
 *
 * @throws {TypeError} When it is neither (not shared memory).
 */
export function refOf(buffer: ArrayBufferLike): SharedRef {
  if (buffer instanceof SharedArrayBuffer) return buffer;
  const place = places.get(buffer);
  if (place === undefined) throw new TypeError("Not shared memory: cannot send this buffer");
  return place.where;
}

/**
 * The buffer a {@linkcode SharedRef} names, in this thread or process: the
 * same `SharedArrayBuffer`, or a view of the same mapped bytes (mapping the
 * sender's memory file first when it is another process's).
 */
export function bufferOf(ref: SharedRef): SharedArrayBuffer | ArrayBuffer {
  if (ref instanceof SharedArrayBuffer) return ref;
  const { pid, fd, fileBytes, offset, bytes } = checkRef(ref);
  const key = `${pid}:${fd}`;
  let base = mapped.get(key);
  if (base === undefined) {
    base = mapFrom(pid, fd, fileBytes);
    mapped.set(key, base);
  }
  const buffer = viewAt(base + offset, bytes);
  places.set(buffer, { where: { pid, fd, fileBytes, offset, bytes }, address: base + offset });
  return buffer;
}

/**
 * Checks that a reference is whole numbers naming bytes inside a file of
 * this process or its parent (the only processes that send one here).
 */
function checkRef(ref: MappedBytes): MappedBytes {
  const { pid, fd, fileBytes, offset, bytes } = ref;
  const whole = [pid, fd, fileBytes, offset, bytes].every((n) => Number.isSafeInteger(n) && n >= 0);
  if (!whole || offset + bytes > fileBytes || (pid !== Deno.pid && pid !== Deno.ppid)) {
    throw new TypeError("Not a reference to shared memory of this process or its parent");
  }
  return ref;
}
