/**
 * Everything that crosses a boundary (task arguments, results, errors) goes
 * through this module.
 *
 * Library objects (a `Mutex`, a `Queue`, a `Value`) cannot be cloned as they
 * are: what must arrive is a working handle on the same shared state. Such an
 * object implements {@linkcode describe}, which turns it into a
 * {@linkcode Descriptor}: the kind of object, the URL of the module that can
 * revive it, and its state (for threads, the SharedArrayBuffers themselves).
 * {@linkcode encode} swaps descriptors in for library objects found anywhere
 * inside arrays, plain objects, Maps and Sets; on the far side
 * {@linkcode revive} imports the named modules (each registers a reviver with
 * {@linkcode registerReviver}) and swaps working objects back in. That is
 * for data from a trusted side (the parent, a thread); what a child process
 * sends the parent is revived by the broker with {@linkcode reviveWith},
 * which imports nothing.
 *
 * The rest travels by structured clone for threads (transferables honoured);
 * processes use `node:v8` frames. When a clone fails, {@linkcode explainUnsendable}
 * names the argument and its type.
 *
 * @module
 */

import {
  BrokenBarrierError,
  BrokenPoolError,
  CancelledError,
  QueueClosedError,
  SerializationError,
  TimeoutError,
  WorkerCrashedError,
} from "../errors.ts";
import { plainArrays } from "./protocol.ts";

/** The method a library object implements to cross a boundary. */
export const describe: unique symbol = Symbol.for("@parallel/core.describe") as never;

/** Which side an object is being described for. */
export interface DescribeContext {
  /** Threads share memory; processes reach the parent's objects via the broker. */
  readonly transport: "thread" | "process";
  /**
   * For processes: the child maps this program's shared memory (it may use
   * FFI, see `memory.ts`), so an object whose `RemoteSpec.direct` is set is
   * sent as itself, as to a thread, not as a handle on the broker.
   */
  readonly mapped?: boolean;
  /**
   * For processes: describes any library object as a handle on the broker,
   * in place of its own `[describe]` (which only knows shared memory).
   */
  readonly share?: (object: Shareable) => Descriptor;
}

/**
 * How a child process may use an object through the broker. A class states
 * it as `get [remote](): RemoteSpec`; without one, every method is an async
 * call, and names ending in `Sync` fail in a child.
 */
export const remote: unique symbol = Symbol.for("@parallel/core.remote") as never;

/**
 * The shape of one argument a child may pass to a shared object's method.
 * The parent checks it before the call, so the method only ever sees data
 * the child was able to send:
 *
 * - `"value"`: any data (a queue item, a cell's value); the method checks it.
 * - `"number"`: a number, or left out.
 * - `"options"`: `{ timeout? }`, or left out. A child's `signal` stays in the
 *   child; the parent passes the method an options object of its own making.
 */
export type ArgShape = "value" | "number" | "options";

/** See {@linkcode remote}. */
export interface RemoteSpec {
  /**
   * The methods a child may call, each with the shapes of its arguments. The
   * parent calls nothing else: no other method, getter, setter, constructor
   * or symbol. A method with an `"options"` argument waits; the parent ends
   * that wait when the child aborts it or dies.
   */
  readonly calls?: Readonly<Record<string, readonly ArgShape[]>>;
  /**
   * Methods and getters that must answer at once, mapped to the async form to
   * use instead (`tryGet: "await queue.get({ timeout: 0 })"`); in a child they throw.
   */
  readonly immediate?: Readonly<Record<string, string>>;
  /** Methods of `calls` sent in order without waiting for an answer (`close`, `taskDone`, `release`). */
  readonly oneWay?: readonly string[];
  /** Properties that never change, copied to the child (`length`). */
  readonly constants?: Readonly<Record<string, unknown>>;
  /** Properties holding shared objects of their own (`lock`), handed over as handles too. */
  readonly members?: readonly string[];
  /** The call a child's `for await` repeats until `QueueClosedError` (default `get`, if listed). */
  readonly iterate?: string;
  /**
   * Set when the object lives wholly in shared memory from `memory.ts`: a
   * child that maps it ({@linkcode DescribeContext.mapped}) gets the object
   * itself and calls nothing through the broker.
   */
  readonly direct?: boolean;
  /** Set when the object cannot work through the broker: why, for the error. */
  readonly localOnly?: string;
}

/** A library object in transit. */
export interface Descriptor {
  /** The reviver to use, as registered with {@linkcode registerReviver}. */
  readonly kind: string;
  /** The module that registers that reviver when imported. */
  readonly module: string;
  /** Whatever the reviver needs (for threads: SharedArrayBuffers). */
  readonly state: unknown;
  /**
   * For a child that maps memory: the object's handle on the broker too,
   * which the child sends back to name the object ({@linkcode revivedHandles}).
   */
  readonly handle?: unknown;
}

/** An object that can be passed to a thread or a process as a working handle. */
export interface Shareable {
  /** Describes this object for the far side. */
  [describe](context: DescribeContext): Descriptor;
}

/** Turns a descriptor's state back into a working object. */
export type Reviver = (state: any, context: DescribeContext) => unknown;

/** The property that marks a descriptor inside encoded data. */
const MARK = "@parallel/core.descriptor";

interface MarkedDescriptor {
  [MARK]: string;
  module: string;
  state: unknown;
  handle?: unknown;
}

const revivers = new Map<string, Reviver>();
const NONE: string[] = [];

function isPrimitive(value: unknown): boolean {
  return typeof value !== "object" || value === null;
}

/** Above this length an array is checked for holes before it is walked by index. */
const SPARSE_CHECK = 65_536;

/** Holes a long array may have before it is walked by the indexes it holds. */
const HOLES_ALLOWED = 1_024;

/**
 * For a long sparse array, the indexes that hold items; `undefined` for any
 * other array, which is walked by index. (A child can send an array 26
 * bytes long whose length is 2**32 - 2: it must be walked by what it holds.)
 * A dense array is told by looking at its indexes, which is far cheaper than
 * listing its keys; a sparse one shows itself within the first holes.
 */
function heldIndexes(array: unknown[]): number[] | undefined {
  if (array.length <= SPARSE_CHECK) return undefined;
  let holes = 0;
  for (let i = 0; i < array.length; i++) {
    if (!(i in array) && ++holes > HOLES_ALLOWED) {
      return Object.keys(array).map(Number).filter((index) =>
        Number.isInteger(index) && index >= 0 && index < array.length
      );
    }
  }
  return undefined;
}

function count(array: unknown[], held: number[] | undefined): number {
  return held === undefined ? array.length : held.length;
}

function allPrimitive(array: unknown[]): boolean {
  const held = heldIndexes(array);
  for (let k = 0, n = count(array, held); k < n; k++) {
    if (!isPrimitive(array[held?.[k] ?? k])) return false;
  }
  return true;
}

/** A copy of an array's items, holes kept (no `slice`: it would call the array's `constructor`). */
function copyItems(array: unknown[], held: number[] | undefined): unknown[] {
  const copy: unknown[] = [];
  copy.length = array.length;
  for (let k = 0, n = count(array, held); k < n; k++) {
    const i = held?.[k] ?? k;
    copy[i] = array[i];
  }
  return copy;
}

/**
 * Registers how to revive descriptors of `kind`. Called at the top level of
 * the module named in those descriptors.
 */
export function registerReviver(kind: string, reviver: Reviver): void {
  revivers.set(kind, reviver);
}

/** What {@linkcode encode} returns. */
export interface Encoded<T> {
  /** The value with descriptors in place of library objects. */
  value: T;
  /** Modules the far side must import before reviving; empty when none. */
  modules: string[];
}

/**
 * Replaces library objects inside `value` with descriptors. Copies only the
 * containers on the path to a library object; everything else is shared.
 */
export function encode<T>(value: T, context: DescribeContext): Encoded<T> {
  if (typeof value !== "object" || value === null) return { value, modules: NONE };
  if (Array.isArray(value) && allPrimitive(value)) return { value, modules: NONE };
  const modules = new Set<string>();
  const encoded = encodeNode(value, context, modules, new Map(), 0) as T;
  return { value: encoded, modules: [...modules] };
}

function encodeNode(
  node: object,
  context: DescribeContext,
  modules: Set<string>,
  seen: Map<object, unknown>,
  depth: number,
): unknown {
  if (seen.has(node)) return seen.get(node);
  if (depth > MAX_DEPTH) {
    throw new SerializationError(
      `it is nested more than ${MAX_DEPTH} levels deep, too deep to send`,
    );
  }
  if (describe in node) {
    const descriptor = context.share
      ? context.share(node as Shareable)
      : (node as Shareable)[describe](context);
    modules.add(descriptor.module);
    const marked: MarkedDescriptor = {
      [MARK]: descriptor.kind,
      module: descriptor.module,
      state: descriptor.state,
    };
    if (descriptor.handle !== undefined) marked.handle = descriptor.handle;
    seen.set(node, marked);
    return marked;
  }
  if (Object.hasOwn(node, MARK)) {
    // Data that poses as a library object (a child's result, say) would be revived as one.
    throw new SerializationError(
      `it holds a property named "${MARK}", which only the library writes`,
    );
  }
  seen.set(node, node);
  const child = (value: unknown) =>
    typeof value === "object" && value !== null
      ? encodeNode(value, context, modules, seen, depth + 1)
      : value;
  if (Array.isArray(node)) {
    let copy: unknown[] | undefined;
    const held = heldIndexes(node);
    for (let k = 0, n = count(node, held); k < n; k++) {
      const i = held?.[k] ?? k;
      const item = node[i];
      const encoded = child(item);
      if (encoded !== item) {
        copy ??= copyItems(node, held);
        copy[i] = encoded;
      }
    }
    return remember(node, copy, seen);
  }
  if (node instanceof Map) {
    let copy: Map<unknown, unknown> | undefined;
    for (const [key, item] of node) {
      const encoded = child(item);
      if (encoded !== item) {
        copy ??= new Map(node);
        copy.set(key, encoded);
      }
    }
    return remember(node, copy, seen);
  }
  if (node instanceof Set) {
    let changed = false;
    const items = [...node].map((item) => {
      const encoded = child(item);
      if (encoded !== item) changed = true;
      return encoded;
    });
    return remember(node, changed ? new Set(items) : undefined, seen);
  }
  const proto = Object.getPrototypeOf(node);
  if (proto === Object.prototype || proto === null) {
    let copy: Record<string, unknown> | undefined;
    for (const key of Object.keys(node)) {
      const item = (node as Record<string, unknown>)[key];
      const encoded = child(item);
      if (encoded !== item) {
        copy ??= { ...node };
        copy[key] = encoded;
      }
    }
    return remember(node, copy, seen);
  }
  if (losesState(node)) {
    throw new SerializationError(
      `it is or holds ${describeType(node)}, which keeps its state where a copy cannot see it ` +
        `(it would arrive as {}); send the data it holds instead (a URL's href, a file's path)`,
    );
  }
  return node;
}

/**
 * The deepest nesting that crosses a boundary. Structured clone and
 * `node:v8` both overflow the stack a few thousand levels down; this limit
 * fails first, with the same message wherever the data is sent from.
 */
const MAX_DEPTH = 1_000;

/**
 * `make()`, called once, on first use. Deno loads `Blob`, `MessagePort` and
 * the streams only when a program first touches them: a table that names
 * them at import would cost every program a few milliseconds.
 */
function onFirstUse<T>(make: () => T): () => T {
  let made: T | undefined;
  return () => made ??= make();
}

/** Prototypes of the built-in objects a copy carries whole, though they have no own properties. */
const copiedWhole = onFirstUse((): ReadonlySet<object> =>
  new Set<object>([
    Date.prototype,
    RegExp.prototype,
    ArrayBuffer.prototype,
    SharedArrayBuffer.prototype,
    DataView.prototype,
    Boolean.prototype,
    Number.prototype,
    String.prototype,
    BigInt.prototype,
    Blob.prototype,
    File.prototype,
    MessagePort.prototype,
  ])
);

/**
 * Whether a copy of `node` would arrive as `{}`: an instance of a class
 * with no own data (a `URL`, a `Deno.FsFile`, a `Request`, an object whose
 * state is in private fields). Objects the platform copies whole (a
 * `CryptoKey`, a `WebAssembly.Module` or `Memory`) are not; one that only
 * a transfer can move (a stream) is left to the send, which knows.
 */
function losesState(node: object): boolean {
  if (ArrayBuffer.isView(node) || node instanceof Error) return false;
  const proto = Object.getPrototypeOf(node);
  if (proto === Object.prototype || proto === null || copiedWhole().has(proto)) return false;
  // A copy takes own enumerable string-keyed properties only.
  if (Object.keys(node).length > 0) return false;
  let copy: unknown;
  try {
    copy = structuredClone(node);
  } catch {
    // `structuredClone` refuses a URL that `postMessage` sends as {}; a stream only moves.
    return !movedOnly().has(proto);
  }
  return Object.getPrototypeOf(copy) === Object.prototype;
}

/** Prototypes of objects that cannot be copied, only transferred: the send decides. */
const movedOnly = onFirstUse((): ReadonlySet<object> =>
  new Set<object>([ReadableStream.prototype, WritableStream.prototype, TransformStream.prototype])
);

function remember(node: object, copy: object | undefined, seen: Map<object, unknown>): unknown {
  if (copy === undefined) return node;
  seen.set(node, copy);
  return copy;
}

/**
 * Imports the modules that revive the descriptors in `value`, then replaces
 * every descriptor with a working object, in place. For data from a trusted
 * side only (the parent, or a thread): a child process names no module the
 * parent imports, see {@linkcode reviveWith}.
 */
export async function revive<T>(
  value: T,
  modules: readonly string[],
  context: DescribeContext,
): Promise<T> {
  for (const module of modules) await import(module);
  return reviveWith(value, (descriptor) => reviveDescriptor(descriptor, context));
}

/**
 * Replaces every descriptor inside `value` with what `reviveOne` makes of it,
 * in place, importing nothing.
 */
export function reviveWith<T>(value: T, reviveOne: (descriptor: Descriptor) => unknown): T {
  return reviveNode(value, reviveOne, new Set()) as T;
}

function reviveNode(
  node: unknown,
  reviveOne: (descriptor: Descriptor) => unknown,
  seen: Set<object>,
): unknown {
  if (typeof node !== "object" || node === null || seen.has(node)) return node;
  if (Object.hasOwn(node, MARK)) {
    const marked = node as MarkedDescriptor;
    return reviveOne({
      kind: marked[MARK],
      module: marked.module,
      state: marked.state,
      handle: marked.handle,
    });
  }
  seen.add(node);
  if (Array.isArray(node)) {
    const held = heldIndexes(node);
    for (let k = 0, n = count(node, held); k < n; k++) {
      const i = held?.[k] ?? k;
      node[i] = reviveNode(node[i], reviveOne, seen);
    }
  } else if (node instanceof Map) {
    for (const [key, item] of node) node.set(key, reviveNode(item, reviveOne, seen));
  } else if (node instanceof Set) {
    const items = [...node];
    node.clear();
    for (const item of items) node.add(reviveNode(item, reviveOne, seen));
  } else {
    const proto = Object.getPrototypeOf(node);
    if (proto === Object.prototype || proto === null) {
      const record = node as Record<string, unknown>;
      for (const key of Object.keys(record)) record[key] = reviveNode(record[key], reviveOne, seen);
    }
  }
  return node;
}

const ERROR_MARK = "@parallel/core.error";

interface PackedError {
  [ERROR_MARK]: true;
  name: string;
  message: string;
  stack?: string;
  cause?: unknown;
  props: Record<string, unknown>;
}

/** Errors rebuilt as their own class on the far side: the standard ones and this library's. */
const KNOWN_ERRORS: ReadonlyMap<string, { prototype: Error }> = new Map<
  string,
  { prototype: Error }
>([
  ["Error", Error],
  ["TypeError", TypeError],
  ["RangeError", RangeError],
  ["ReferenceError", ReferenceError],
  ["SyntaxError", SyntaxError],
  ["EvalError", EvalError],
  ["URIError", URIError],
  ["TimeoutError", TimeoutError],
  ["CancelledError", CancelledError],
  ["WorkerCrashedError", WorkerCrashedError],
  ["SerializationError", SerializationError],
  ["BrokenPoolError", BrokenPoolError],
  ["BrokenBarrierError", BrokenBarrierError],
  ["QueueClosedError", QueueClosedError],
]);

/** How many `cause`s deep an error is rebuilt; deeper ones arrive as they were packed. */
const MAX_CAUSE_DEPTH = 32;

/**
 * Packs an error so that its name, message, stack, `cause` and own data
 * properties survive a structured clone, which keeps only the standard
 * names (`CustomError` would arrive as `Error`). Other thrown values pass as
 * they are.
 */
export function packError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const props: Record<string, unknown> = {};
  for (const key of Object.keys(error)) {
    if (key === "name" || key === "message" || key === "stack" || key === "cause") continue;
    const value = (error as unknown as Record<string, unknown>)[key];
    if (typeof value !== "function" && typeof value !== "symbol") props[key] = value;
  }
  const packed: PackedError = {
    [ERROR_MARK]: true,
    name: error.name,
    message: error.message,
    stack: error.stack,
    props,
  };
  if ("cause" in error) packed.cause = packError(error.cause);
  return packed;
}

/**
 * Rebuilds an error packed by {@linkcode packError}. The packed error may
 * come from a child process, so it is only data: the name picks a class from
 * a fixed list (any other name gives an `Error` with that name), and its
 * properties are defined as data, never assigned.
 */
export function unpackError(packed: unknown, depth = 0): unknown {
  if (typeof packed !== "object" || packed === null || !Object.hasOwn(packed, ERROR_MARK)) {
    return packed;
  }
  if (depth > MAX_CAUSE_DEPTH) return packed;
  // Only strings are read as strings: converting a child's object could run for seconds.
  const { name, message, stack, cause, props } = packed as Partial<PackedError>;
  const text = typeof message === "string" ? message : "";
  const error = Object.hasOwn(packed, "cause")
    ? new Error(text, { cause: unpackError(cause, depth + 1) })
    : new Error(text);
  const known = typeof name === "string" ? KNOWN_ERRORS.get(name) : undefined;
  Object.setPrototypeOf(error, (known ?? Error).prototype);
  const data = (value: unknown) => ({ value, writable: true, configurable: true });
  Object.defineProperty(error, "name", data(typeof name === "string" ? name : "Error"));
  if (typeof stack === "string") Object.defineProperty(error, "stack", data(stack));
  if (typeof props === "object" && props !== null) {
    for (const key of Object.keys(props)) {
      if (key === "name" || key === "message" || key === "stack" || key === "cause") continue;
      const value = (props as Record<string, unknown>)[key];
      Object.defineProperty(error, key, { ...data(value), enumerable: true });
    }
  }
  return error;
}

/**
 * In a child process, the broker handle of each object it revived from its
 * parent (a handle's proxy, or an object in the parent's memory, which came
 * with its handle): what the child sends to name the object to its parent.
 */
export const revivedHandles: WeakMap<object, unknown> = new WeakMap();

/** Revives one descriptor made by a `[describe]` method (for objects nested in another's state). */
export function reviveDescriptor(descriptor: Descriptor, context: DescribeContext): unknown {
  const reviver = revivers.get(descriptor.kind);
  if (reviver === undefined) {
    throw new SerializationError(`Cannot revive a ${descriptor.kind}: no reviver is registered`);
  }
  const object = reviver(descriptor.state, context);
  if (descriptor.handle !== undefined) revivedHandles.set(object as object, descriptor.handle);
  return object;
}

/** A short description of a value's type for error messages. */
export function describeType(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "function") {
    return typeof value.name === "string" && value.name
      ? `a function (${value.name.slice(0, 100)})`
      : "a function";
  }
  if (typeof value === "symbol") return "a symbol";
  if (typeof value !== "object") return typeof value;
  if (Array.isArray(value)) return "an array";
  const name = Object.getPrototypeOf(value)?.constructor?.name;
  return typeof name === "string" && name ? `an instance of ${name.slice(0, 100)}` : "an object";
}

/**
 * Finds which of `values` cannot be structured-cloned and explains it, or
 * returns `undefined` when all of them can. Used after a `postMessage` failed,
 * so the common path pays nothing.
 *
 * @param values The values that were being sent.
 * @param what Names a value by its index: `(i) => "argument " + i + " of task f"`.
 * @param check Throws when a value cannot be sent (default: structured clone).
 */
export function explainUnsendable(
  values: readonly unknown[],
  what: (index: number) => string,
  check: (value: unknown) => unknown = structuredClone,
): SerializationError | undefined {
  for (let i = 0; i < values.length; i++) {
    try {
      check(values[i]);
    } catch (error) {
      const why = error instanceof RangeError
        ? `it is nested too deeply to send (${error.message})`
        : error instanceof SerializationError
        ? error.message
        : `it is ${describeType(values[i])}, or holds one that cannot be cloned (${
          (error as Error).message
        })`;
      return new SerializationError(`Cannot send ${what(i)}: ${why}`, { cause: error });
    }
  }
  return undefined;
}

/**
 * Whether JSON carries `value` exactly. At the top level (the message
 * envelope) a property may be `undefined`: it is left out and reads back as
 * `undefined`. Deeper down, `undefined` needs `node:v8`, and so does an
 * object seen twice (JSON would copy it, v8 keeps it one object), an array
 * with properties besides its items, and an instance of a subclass of Array
 * (its class may have a `toJSON`, which JSON would call). Pass `depth` 1 to
 * allow no `undefined` at all.
 */
export function jsonExact(value: unknown, depth: number, seen: Set<object>): boolean {
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
        if (Object.getPrototypeOf(value) !== Array.prototype) return false;
        if (!plainArrays.has(value) && Object.keys(value).length !== value.length) return false;
        for (let i = 0; i < value.length; i++) {
          const item = value[i];
          // Inline for the common items (no hole reads as one of these).
          switch (typeof item) {
            case "string":
            case "boolean":
              continue;
            case "number":
              if (Number.isFinite(item) && !Object.is(item, -0)) continue;
              return false;
          }
          if (!(i in value) || !jsonExact(item, depth + 1, seen)) return false;
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
