/**
 * The libc calls that let processes share memory, through FFI: `memfd_create`,
 * `ftruncate` and `mmap` make memory a child can map, `open` of
 * `/proc/<pid>/fd/<n>` maps a parent's, the `futex` syscall sleeps on a
 * word and wakes its sleepers, across processes, and `waitid` and `kill`
 * tell whether a process that held a lock has ended. `Atomics.wait` refuses
 * memory that is not a `SharedArrayBuffer`; the futex is what it does inside.
 *
 * Only on Linux x86-64, and only with FFI permission: {@linkcode libcAvailable}
 * says whether this program may use it. Opened on first use (about 2 ms).
 *
 * @module
 */

/** The futex syscall's number on x86-64, and its two operations (shared, not private). */
const SYS_FUTEX = 202;
const FUTEX_WAIT = 0;
const FUTEX_WAKE = 1;
const MFD_CLOEXEC = 1;
const O_RDWR = 2;
const F_GET_SEALS = 1034;
const SEEK_END = 2;
const O_CLOEXEC = 0o2000000;
const PROT_READ_WRITE = 3;
const MAP_SHARED = 1;
const INT_MAX = 0x7fff_ffff;
const P_PID = 1;
const WNOHANG = 1;
const WEXITED = 4;
const WNOWAIT = 0x0100_0000;

const SYMBOLS = {
  memfd_create: { parameters: ["buffer", "u32"], result: "i32" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32"], result: "i32" },
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  close: { parameters: ["i32"], result: "i32" },
  kill: { parameters: ["i32", "i32"], result: "i32" },
  waitid: { parameters: ["i32", "i32", "buffer", "i32"], result: "i32" },
  syscall: {
    parameters: ["i32", "usize", "i32", "i32", "buffer", "usize", "i32"],
    result: "i32",
  },
  syscallOffThread: {
    name: "syscall",
    parameters: ["i32", "usize", "i32", "i32", "usize", "usize", "i32"],
    result: "i32",
    nonblocking: true,
  },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let libc: Libc | undefined;
let available: boolean | undefined;

/**
 * Whether this program can share memory with its child processes: Linux
 * x86-64, FFI granted, and libc opens. Decided on the first call.
 */
export function libcAvailable(): boolean {
  if (available === undefined) {
    available = false;
    if (Deno.build.os === "linux" && Deno.build.arch === "x86_64") {
      try {
        if (Deno.permissions.querySync({ name: "ffi" }).state === "granted") {
          libc = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
          available = true;
        }
      } catch {
        available = false;
      }
    }
  }
  return available;
}

function symbols(): Libc {
  if (!libcAvailable()) throw new Error("Shared memory across processes needs FFI on Linux x86-64");
  return libc!;
}

/** Zero-filled memory that other processes can map: its file descriptor and address here. */
export interface Mapping {
  readonly fd: number;
  readonly address: number;
}

/**
 * Creates `bytes` of zeroed memory backed by an anonymous file (`memfd`), so
 * a child can map the same pages from `/proc/<this pid>/fd/<fd>`. Nothing is
 * created in a file system: the pages go when the last process mapping them does.
 */
export function createMapping(bytes: number): Mapping {
  const c = symbols();
  const fd = c.memfd_create(new TextEncoder().encode("parallel-core\0"), MFD_CLOEXEC);
  if (fd < 0) throw new Error("memfd_create failed: cannot allocate shared memory");
  if (c.ftruncate(fd, BigInt(bytes)) !== 0) {
    c.close(fd);
    throw new Error(`ftruncate of ${bytes} bytes failed: cannot allocate shared memory`);
  }
  return { fd, address: map(c, fd, bytes) };
}

/**
 * Maps the memory file `fd` of process `pid` (this one, or its parent), which
 * must be a memfd of exactly `bytes`; returns its address here. Anything else
 * (another kind of file, another size) is refused, so a forged reference maps
 * nothing but the shared memory it names.
 */
export function mapFrom(pid: number, fd: number, bytes: number): number {
  const c = symbols();
  const path = new TextEncoder().encode(`/proc/${pid}/fd/${fd}\0`);
  const opened = c.open(path, O_RDWR | O_CLOEXEC);
  if (opened < 0) throw new Error(`Cannot open the shared memory of process ${pid} (fd ${fd})`);
  try {
    // Only memfds (and tmpfs files) answer F_GET_SEALS.
    if (c.fcntl(opened, F_GET_SEALS) < 0 || Number(c.lseek(opened, 0n, SEEK_END)) !== bytes) {
      throw new Error(`Process ${pid}'s fd ${fd} is not shared memory of ${bytes} bytes`);
    }
    return map(c, opened, bytes);
  } finally {
    c.close(opened);
  }
}

function map(c: Libc, fd: number, bytes: number): number {
  const pointer = c.mmap(null, BigInt(bytes), PROT_READ_WRITE, MAP_SHARED, fd, 0n);
  const address = Number(Deno.UnsafePointer.value(pointer));
  // MAP_FAILED is (void *) -1.
  if (address === 0 || address >= 2 ** 53) throw new Error("mmap failed: cannot map shared memory");
  return address;
}

/** An `ArrayBuffer` over `bytes` of memory at `address` in this process. */
export function viewAt(address: number, bytes: number): ArrayBuffer {
  return Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(BigInt(address))!, bytes);
}

/** A `struct timespec` for a relative timeout in milliseconds, or `null` for none. */
function timespec(timeout: number): BigInt64Array | null {
  if (timeout === Infinity) return null;
  const whole = Math.floor(timeout);
  return new BigInt64Array([
    BigInt(Math.floor(whole / 1000)),
    BigInt((whole % 1000) * 1_000_000 + Math.floor((timeout - whole) * 1_000_000)),
  ]);
}

/**
 * Sleeps while the 32-bit word at `address` holds `expected`, for at most
 * `timeout` ms, blocking this thread. Returns 0 when woken, -1 otherwise
 * (the word differed, the time ran out, or a signal came): callers re-check.
 */
export function futexWait(address: number, expected: number, timeout: number): number {
  return symbols().syscall(
    SYS_FUTEX,
    BigInt(address),
    FUTEX_WAIT,
    expected,
    timespec(timeout),
    0n,
    0,
  );
}

/**
 * {@linkcode futexWait} on a thread of Deno's blocking pool: the event loop
 * keeps running. Its timeout is read from memory that is never freed, not
 * from this isolate's heap: a call still queued when its worker is
 * terminated must not read freed memory.
 */
export async function futexWaitOffThread(
  address: number,
  expected: number,
  timeout: number,
): Promise<number> {
  const c = symbols();
  const limit = timeout === Infinity ? undefined : takeTimespec(timeout);
  try {
    return await c.syscallOffThread(
      SYS_FUTEX,
      BigInt(address),
      FUTEX_WAIT,
      expected,
      BigInt(limit ?? 0),
      0n,
      0,
    );
  } finally {
    if (limit !== undefined) spareTimespecs.push(limit);
  }
}

/** Addresses of unused `struct timespec`s, in pages mapped for them and never unmapped. */
const spareTimespecs: number[] = [];
const PAGE_BYTES = 4096;
const MAP_PRIVATE_ANONYMOUS = 0x22;

/** The address of a `struct timespec` holding `timeout` milliseconds. */
function takeTimespec(timeout: number): number {
  if (spareTimespecs.length === 0) {
    const pointer = symbols().mmap(
      null,
      BigInt(PAGE_BYTES),
      PROT_READ_WRITE,
      MAP_PRIVATE_ANONYMOUS,
      -1,
      0n,
    );
    const page = Number(Deno.UnsafePointer.value(pointer));
    if (page === 0 || page >= 2 ** 53) throw new Error("mmap failed: cannot wait on shared memory");
    for (let at = page; at < page + PAGE_BYTES; at += 16) spareTimespecs.push(at);
  }
  const address = spareTimespecs.pop()!;
  new BigInt64Array(viewAt(address, 16)).set(timespec(timeout)!);
  return address;
}

/** Wakes up to `count` sleepers on the word at `address`; returns how many woke. */
export function futexWake(address: number, count: number): number {
  return symbols().syscall(
    SYS_FUTEX,
    BigInt(address),
    FUTEX_WAKE,
    Math.min(count, INT_MAX),
    null,
    0n,
    0,
  );
}

/**
 * Whether process `pid` has ended: a child of this process that exited
 * (looked at without reaping it, which Deno does), or a pid this program
 * cannot signal: none, or one reused by another user's process, which means
 * the one it was asked about has ended. `false` while it runs.
 */
export function processEnded(pid: number): boolean {
  const c = symbols();
  // siginfo_t: 128 bytes; si_pid is its fifth int. Zeroed, it stays 0 while the child runs.
  const info = new Int32Array(32);
  const options = WEXITED | WNOHANG | WNOWAIT;
  if (c.waitid(P_PID, pid, new Uint8Array(info.buffer), options) === 0) return info[4] === pid;
  return c.kill(pid, 0) !== 0;
}
