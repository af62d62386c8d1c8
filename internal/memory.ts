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
/** This process's pid (`Deno.pid` is a call each time). */
const OWN_PID = Deno.pid;
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
  if (size > MAPPING_BYTES / 4) return view(newMapping(size), size, 0, bytes);
  if (current === undefined || current.used + size > MAPPING_BYTES) {
    current = { ...newMapping(MAPPING_BYTES), used: 0 };
  }
  const offset = current.used;
  current.used += size;
  return view(current, MAPPING_BYTES, offset, bytes);
}

/**
 * Zeroed shared memory that holds `initial` bytes and may hold up to `max`:
 * a growable `SharedArrayBuffer`, or, since mapped memory cannot grow,
 * `max` bytes of it at once (the file is sparse: pages never touched cost
 * nothing). The user keeps its own count of the bytes in use.
 */
export function growableBytes(initial: number, max: number): SharedArrayBuffer | ArrayBuffer {
  return memoryKind() === "heap"
    ? new SharedArrayBuffer(initial, { maxByteLength: max })
    : sharedBytes(max);
}

/** A new memory file of `bytes`, mapped here (and known to {@linkcode bufferOf}). */
function newMapping(bytes: number): { fd: number; address: number } {
  const mapping = createMapping(bytes);
  mapped.set(`${Deno.pid}:${mapping.fd}`, mapping.address);
  return mapping;
}

/** A buffer over `bytes` at `offset` of memory file `fd` (of `fileBytes`), mapped here at `base`. */
function view(
  { fd, address: base }: { fd: number; address: number },
  fileBytes: number,
  offset: number,
  bytes: number,
  pid: number = Deno.pid,
): ArrayBuffer {
  const address = base + offset;
  const buffer = viewAt(address, bytes);
  places.set(buffer, { where: { pid, fd, fileBytes, offset, bytes }, address });
  return buffer;
}

/**
 * Whether `buffer` is mapped memory of another process: this process is a
 * child that maps its parent's (it is so a child of it, not a thread).
 */
export function isParents(buffer: ArrayBufferLike): boolean {
  const owner = places.get(buffer)?.where.pid;
  return owner !== undefined && owner !== OWN_PID;
}

/** Whether `buffer` is mapped memory, which a child with FFI can map. */
export function isMapped(buffer: ArrayBufferLike): boolean {
  return places.has(buffer);
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
  let address = mapped.get(key);
  if (address === undefined) {
    address = mapFrom(pid, fd, fileBytes);
    mapped.set(key, address);
  }
  return view({ fd, address }, fileBytes, offset, bytes, pid);
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
