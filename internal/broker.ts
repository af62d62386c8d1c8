/**
 * The broker: how a child process uses the parent's shared objects (a
 * `Queue`, a `Mutex`, a `Value`). A process cannot share memory with its
 * parent, so the parent owns every shared object and a child holds a handle
 * that sends each operation over its channel; the parent performs it and
 * sends the answer back. Threads never come here: they touch shared memory.
 *
 * ```
 * child                                   parent
 * handle.get({ timeout: 50 }) ─ call ───▶ objects.get(id).get({ timeout: 50 })
 *        ◀──────────────────── reply ──── value (or error)
 * ```
 *
 * - Any library object passed to a process is registered here under a
 *   capability (128 random bits) and described as a remote handle; the child
 *   revives a proxy with the methods its class lists in `RemoteSpec.calls`.
 *   A method named in `RemoteSpec.immediate` (one that must answer at once,
 *   like `tryGet` or `size`) throws in a child, naming the async form to
 *   use; `oneWay` methods (`close`, `release`) are sent in order without
 *   waiting for an answer.
 * - The child is untrusted (see {@linkcode BrokerSession}): the parent
 *   performs only listed methods on objects whose capability the child
 *   holds, imports nothing a child names, and ends a child that sends
 *   anything else.
 * - Calls from one child start in the order they arrive and run concurrently,
 *   so a `put` is not stuck behind a waiting `get`.
 * - Objects a call returns (a lease from `acquire()`) become handles too. A
 *   child that dies holding a lease has it released by its session here, and
 *   the primitive is marked (`markOwnerDied` in `sync/_shared.ts`), so the next holder
 *   can learn of it.
 * - The broker keeps every object passed to a process alive for the life of
 *   the program: a child may use it at any time.
 *
 * @module
 */

import { SerializationError } from "../errors.ts";
import { markOwnerDied } from "../sync/_shared.ts";
import {
  type ArgShape,
  describe,
  type DescribeContext,
  describeType,
  type Descriptor,
  encode,
  packError,
  registerReviver,
  remote,
  type RemoteSpec,
  revive,
  revivedHandles,
  reviveWith,
  type Shareable,
  unpackError,
} from "./codec.ts";

/** The descriptor kind of a handle on a parent's object. */
const KIND = "@parallel/core.remote";

interface RemoteState {
  /** The object's capability: 128 random bits, known only to whom it was passed. */
  id: string;
  className: string;
  spec: RemoteSpec;
  /** Handles for the object's `RemoteSpec.members`. */
  members: Record<string, RemoteState>;
}

/** Child → parent: perform `method(...args)` on object `object`; `call` 0 wants no answer. */
export interface CallMessage {
  readonly type: "call";
  readonly call: number;
  readonly object: string;
  readonly method: string;
  readonly args: unknown[];
  /** Whether `args` hold handles on the parent's objects, to be swapped for the objects. */
  readonly handles: boolean;
}

/** Child → parent: stop waiting in call `call` (the child's signal fired). */
export interface AbortMessage {
  readonly type: "abort";
  readonly call: number;
}

/** Parent → child: the answer to a call. */
export interface ReplyMessage {
  readonly type: "reply";
  readonly call: number;
  readonly ok: boolean;
  readonly value: unknown;
  readonly modules: string[];
}

/** The most calls one child may have waiting in the parent at once. */
export const MAX_CALLS_IN_FLIGHT = 10_000;

/** The most bytes of arguments (a queue item…) one child's waiting calls may hold in the parent. */
export const MAX_HELD_BYTES = 256 * 1024 * 1024;

/** No listed method takes more arguments. */
const MAX_ARGS = 4;

// ---- parent side -----------------------------------------------------------

/** Every object passed to a child, by its capability. */
const objects = new Map<string, object>();
const capabilities = new WeakMap<object, string>();

function newCapability(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function specOf(object: object): RemoteSpec {
  return (object as { [remote]?: RemoteSpec })[remote] ?? {};
}

/** Registers `object` and describes it as a handle a child can revive. */
function shareWithProcess(object: Shareable): Descriptor {
  const spec = specOf(object);
  if (spec.localOnly !== undefined) {
    throw new SerializationError(
      `Cannot send ${describeObject(object)} to a process: ${spec.localOnly}`,
    );
  }
  let id = capabilities.get(object);
  if (id === undefined) {
    id = newCapability();
    capabilities.set(object, id);
    objects.set(id, object);
  }
  const members: Record<string, RemoteState> = {};
  for (const name of spec.members ?? []) {
    members[name] = shareWithProcess((object as unknown as Record<string, Shareable>)[name])
      .state as RemoteState;
  }
  const state: RemoteState = { id, className: classNameOf(object), spec, members };
  return { kind: KIND, module: import.meta.url, state };
}

/** The context a parent encodes arguments for a process with. */
export const parentContext: DescribeContext = { transport: "process", share: shareWithProcess };

/**
 * The context for a child that maps this program's shared memory: objects
 * that live wholly in it (`RemoteSpec.direct`) go as themselves, the rest
 * as handles on the broker.
 */
export const mappedChildContext: DescribeContext = {
  transport: "process",
  mapped: true,
  share: (object) =>
    specOf(object).direct
      ? { ...object[describe](mappedChildContext), handle: shareWithProcess(object).state }
      : shareWithProcess(object),
};

/**
 * What a child sent that no library code in a child sends: the child is
 * hostile or broken, and is ended. The message says what it sent.
 */
export class ChildViolation extends Error {}

/**
 * One child's calls, on the parent side; `close()` when the child is gone.
 *
 * Everything a child sends is untrusted: a task shares its realm with the
 * library's code there. A call names an object by a capability it was given
 * and a method its kind lists in `RemoteSpec.calls`, with arguments of the
 * listed shapes; handles in the arguments must be capabilities too. Anything
 * else is reported to `violated`, which ends the child, and nothing of it is
 * performed.
 */
export class BrokerSession {
  readonly #reply: (message: ReplyMessage) => void;
  readonly #violated: (reason: string) => void;
  /** Leases this child holds: the capability of the lease handle → the primitive it came from. */
  readonly #leases = new Map<string, object>();
  /** Calls still running, by call number: aborted if the child aborts them or dies. */
  readonly #calls = new Map<number, AbortController>();
  /** Bytes of the frames of the calls still running. */
  #held = 0;
  #closed = false;

  /**
   * @param reply Sends an answer to the child.
   * @param violated Ends the child, which sent what no honest child sends.
   */
  constructor(reply: (message: ReplyMessage) => void, violated: (reason: string) => void) {
    this.#reply = reply;
    this.#violated = violated;
  }

  /**
   * Swaps the handles inside `value`, which a child sent, for the parent's
   * objects. Throws a {@linkcode ChildViolation} for anything that is not a handle
   * on an object that was passed to a child.
   */
  reviveFromChild<T>(value: T): T {
    try {
      return reviveWith(value, (descriptor) => {
        const state = descriptor.state as Partial<RemoteState> | null;
        const object = descriptor.kind === KIND && typeof state === "object" && state !== null &&
            typeof state.id === "string"
          ? objects.get(state.id)
          : undefined;
        if (object === undefined) {
          throw new ChildViolation("a handle on a shared object it was not given");
        }
        return object;
      });
    } catch (error) {
      if (error instanceof ChildViolation) throw error;
      // A stack overflow on data nested too deep to walk.
      throw new ChildViolation(`data it could not walk (${(error as Error)?.message})`);
    }
  }

  /** Performs a call from the child, or ends the child if the call is not one it may make. */
  async perform(message: CallMessage, bytes = 0): Promise<void> {
    if (this.#closed) return;
    let ok = true;
    let value: unknown;
    const { call, method } = message;
    try {
      const target = this.#admit(message);
      if (target === undefined) return;
      const shapes = specOf(target).calls![method];
      // A plain copy: `slice` would call a `constructor` the child put on its array.
      const args: unknown[] = [];
      for (let i = 0; i < shapes.length; i++) args.push(message.args[i]);
      if (message.handles === true) this.reviveFromChild(args);
      const abort = new AbortController();
      if (call !== 0) this.#calls.set(call, abort);
      this.#held += bytes;
      try {
        if (this.#held > MAX_HELD_BYTES) {
          throw new ChildViolation(
            `more than ${MAX_HELD_BYTES} bytes of arguments in calls at once`,
          );
        }
        value = await this.#apply(target, method, shapes, args, abort.signal);
      } catch (error) {
        if (error instanceof ChildViolation) throw error;
        ok = false;
        value = error;
      } finally {
        this.#calls.delete(call);
        this.#held -= bytes;
      }
    } catch (error) {
      this.#violate(
        error instanceof ChildViolation
          ? error.message
          : `a call the parent could not read (${error})`,
      );
      return;
    }
    if (call === 0 || this.#closed) return;
    try {
      if (!ok) {
        this.#reply({ type: "reply", call, ok, value: packError(value), modules: [] });
        return;
      }
      const encoded = encode(value, parentContext);
      this.#reply({ type: "reply", call, ok, value: encoded.value, modules: encoded.modules });
    } catch (error) {
      // The answer cannot be sent (over the frame limit, nested too deeply): say so instead.
      const problem = new SerializationError(
        `Cannot send the answer of ${method} to the child process: ${
          (error as Error)?.message ?? "it cannot be encoded"
        }`,
      );
      this.#reply({ type: "reply", call, ok: false, value: packError(problem), modules: [] });
    }
  }

  /**
   * The object a call is on, after checking the call's envelope, capability,
   * method and call number; `undefined` for a call to drop.
   */
  #admit(message: CallMessage): object | undefined {
    const { call, object, method, args } = message;
    if (
      !Number.isSafeInteger(call) || call < 0 || typeof method !== "string" ||
      !Array.isArray(args) || args.length > MAX_ARGS || typeof message.handles !== "boolean"
    ) {
      throw new ChildViolation("a malformed call");
    }
    const target = typeof object === "string" ? objects.get(object) : undefined;
    if (target === undefined) {
      // A lease the parent already took back (the child also called `release()`).
      if (method === DISPOSE && call === 0) return undefined;
      throw new ChildViolation("a call on a shared object it was not given");
    }
    const spec = specOf(target);
    if (spec.calls === undefined || !Object.hasOwn(spec.calls, method)) {
      throw new ChildViolation(
        `a call of a method a child may not call: ` +
          `${classNameOf(target)}.${JSON.stringify(method.slice(0, 64))}`,
      );
    }
    if ((call === 0) !== (spec.oneWay?.includes(method) ?? false)) {
      throw new ChildViolation(
        `a call of ${classNameOf(target)}.${method} with the wrong kind of answer`,
      );
    }
    if (call !== 0 && this.#calls.has(call)) throw new ChildViolation(`call number ${call} twice`);
    if (this.#calls.size >= MAX_CALLS_IN_FLIGHT) {
      throw new ChildViolation(`more than ${MAX_CALLS_IN_FLIGHT} calls at once`);
    }
    return target;
  }

  /** Calls `method` of `target` with `args`, after checking them against `shapes`. */
  async #apply(
    target: object,
    method: string,
    shapes: readonly ArgShape[],
    args: unknown[],
    signal: AbortSignal,
  ): Promise<unknown> {
    const where = `${classNameOf(target)}.${method}`;
    const checked = shapes.map((shape, i) => checkArg(args[i], shape, i, where, signal));
    const name = method === DISPOSE ? Symbol.dispose : method;
    const value = await (target as Record<string | symbol, (...args: unknown[]) => unknown>)[name](
      ...checked,
    );
    if (method === DISPOSE) {
      this.#forgetLease(target);
    } else if (method === "release") {
      this.#forgetLeaseOn(target);
    }
    if (isLease(value)) {
      if (this.#closed) {
        // The child died while this acquire waited: nobody will release it.
        (value as Disposable)[Symbol.dispose]();
        throw new Error("the child process ended");
      }
      return this.#holdLease(value as Disposable, target);
    }
    return value;
  }

  /** The child aborted a waiting call (its `signal` fired). */
  abort(message: AbortMessage): void {
    if (!Number.isSafeInteger(message.call)) {
      this.#violate("a malformed abort");
      return;
    }
    this.#calls.get(message.call)?.abort(
      new DOMException("The child aborted the wait", "AbortError"),
    );
  }

  #violate(reason: string): void {
    if (this.#closed) return;
    this.close();
    this.#violated(reason);
  }

  /** A lease handle was disposed: its capability is spent. */
  #forgetLease(handle: object): void {
    const id = capabilities.get(handle);
    if (id === undefined) return;
    this.#leases.delete(id);
    objects.delete(id);
  }

  /**
   * The child released a primitive directly (`mutex.release()` rather than
   * disposing its lease): one of its leases on it is spent.
   */
  #forgetLeaseOn(primitive: object): void {
    for (const [id, held] of this.#leases) {
      if (held !== primitive) continue;
      this.#leases.delete(id);
      objects.delete(id);
      return;
    }
  }

  /** Wraps a lease a call returned so that the child gets a handle on it. */
  #holdLease(lease: Disposable, primitive: object): object {
    const handle = {
      [describe]: (): Descriptor => {
        throw new Error("unreachable: leases cross only through the broker");
      },
      [Symbol.dispose]: () => lease[Symbol.dispose](),
      [remote]: {
        calls: { [DISPOSE]: [] },
        oneWay: [DISPOSE],
        constants: {
          previousOwnerDied: (lease as { previousOwnerDied?: boolean }).previousOwnerDied ?? false,
        },
      } satisfies RemoteSpec,
    };
    const id = shareWithProcess(handle).state as RemoteState;
    this.#leases.set(id.id, primitive);
    return handle;
  }

  /** The child is gone: release the leases it held and mark their primitives. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const abort of this.#calls.values()) abort.abort(new Error("the child process ended"));
    this.#calls.clear();
    for (const [id, primitive] of this.#leases) {
      const lease = objects.get(id) as Disposable | undefined;
      objects.delete(id);
      markOwnerDied(primitive);
      try {
        lease?.[Symbol.dispose]();
      } catch {
        // Already released.
      }
    }
    this.#leases.clear();
  }
}

/**
 * Checks one argument a child passed against its shape; returns what the
 * method gets. Throws a `TypeError` naming the argument (sent back to the
 * child as the call's error).
 */
function checkArg(
  value: unknown,
  shape: ArgShape,
  index: number,
  where: string,
  signal: AbortSignal,
): unknown {
  switch (shape) {
    case "value":
      return value;
    case "number":
      if (value === undefined || typeof value === "number") return value;
      throw new TypeError(
        `${where}: argument ${index} must be a number, not ${describeType(value)}`,
      );
    case "options": {
      // The child's own signal stays in the child; this one ends the wait if the child goes.
      if (value === undefined) return { signal };
      const proto = typeof value === "object" && value !== null
        ? Object.getPrototypeOf(value)
        : undefined;
      if (proto !== Object.prototype && proto !== null) {
        throw new TypeError(
          `${where}: the options must be a plain object { timeout? }, not ${describeType(value)}`,
        );
      }
      const timeout = Object.hasOwn(value as object, "timeout")
        ? (value as { timeout: unknown }).timeout
        : undefined;
      if (timeout !== undefined && typeof timeout !== "number") {
        throw new TypeError(
          `${where}: 'timeout' must be a number of milliseconds, not ${describeType(timeout)}`,
        );
      }
      // A PriorityQueue's put carries a priority; the queue checks it.
      if (Object.hasOwn(value as object, "priority")) {
        return { timeout, signal, priority: (value as { priority: unknown }).priority };
      }
      return { timeout, signal };
    }
  }
}

/** The method name a child sends for `[Symbol.dispose]()` (a symbol cannot be serialized). */
const DISPOSE = "@dispose";

function isLease(value: unknown): boolean {
  return typeof value === "object" && value !== null &&
    typeof (value as Partial<Disposable>)[Symbol.dispose] === "function";
}

function classNameOf(object: object): string {
  return Object.getPrototypeOf(object)?.constructor?.name || "object";
}

function describeObject(object: object): string {
  return `a ${classNameOf(object) === "object" ? "shared object" : classNameOf(object)}`;
}

// ---- child side ------------------------------------------------------------

/** How a child's handles reach the parent; set by the child's entry module. */
export interface BrokerClient {
  /**
   * Sends a call and resolves with the parent's answer. A `signal` in the
   * options at `waits` stays here; if it fires, the parent is told to stop.
   */
  call(object: string, method: string, args: unknown[], waits?: number): Promise<unknown>;
  /** Sends a call that wants no answer. */
  send(object: string, method: string, args: unknown[]): void;
}

let client: BrokerClient | undefined;

/** The child's context for encoding: its handles describe themselves; nothing else may cross. */
export const childContext: DescribeContext = {
  transport: "process",
  share(object) {
    const state = revivedHandles.get(object as object) as RemoteState | undefined;
    if (state === undefined) {
      throw new SerializationError(
        `Cannot send ${describeObject(object)} made in a child process to its parent: ` +
          `shared objects must be created in the parent and passed to the child`,
      );
    }
    return { kind: KIND, module: import.meta.url, state };
  },
};

/**
 * Connects this child's handles to its parent and returns the function that
 * settles calls as replies arrive.
 */
export function connectBroker(
  post: (message: CallMessage | AbortMessage) => void,
): (message: ReplyMessage) => void {
  const waiting = new Map<number, PromiseWithResolvers<unknown>>();
  let nextCall = 1;
  const encodeArgs = (args: unknown[]) => {
    const encoded = encode(args, childContext);
    return { value: encoded.value, handles: encoded.modules.length > 0 };
  };
  client = {
    call(object, method, args, waits) {
      const call = nextCall++;
      let signal: AbortSignal | undefined;
      if (waits !== undefined && typeof args[waits] === "object" && args[waits] !== null) {
        const { signal: given, ...rest } = args[waits] as { signal?: AbortSignal };
        signal = given;
        args = [...args];
        args[waits] = rest;
      }
      if (signal?.aborted) return Promise.reject(signal.reason);
      const encoded = encodeArgs(args);
      const answer = Promise.withResolvers<unknown>();
      waiting.set(call, answer);
      post({ type: "call", call, object, method, args: encoded.value, handles: encoded.handles });
      if (signal !== undefined) {
        const onAbort = () => post({ type: "abort", call });
        signal.addEventListener("abort", onAbort, { once: true });
        answer.promise.finally(() => signal.removeEventListener("abort", onAbort)).catch(() => {});
        // Rejects with the signal's reason, as the same wait in the parent would.
        return answer.promise.catch((error) => {
          throw signal.aborted ? signal.reason : error;
        });
      }
      return answer.promise;
    },
    send(object, method, args) {
      const encoded = encodeArgs(args);
      post({
        type: "call",
        call: 0,
        object,
        method,
        args: encoded.value,
        handles: encoded.handles,
      });
    },
  };
  return (message) => {
    const answer = waiting.get(message.call);
    if (answer === undefined) return;
    waiting.delete(message.call);
    if (!message.ok) {
      answer.reject(unpackError(message.value));
    } else if (message.modules.length === 0) {
      answer.resolve(message.value);
    } else {
      revive(message.value, message.modules, childContext).then(answer.resolve, answer.reject);
    }
  };
}

/** A child's stand-in for a parent's object: each method its class lists becomes a call. */
function makeHandle(state: RemoteState): object {
  const { id, className, spec, members } = state;
  const calls = spec.calls ?? {};
  const listed = (name: string) => Object.hasOwn(calls, name);
  const methods = new Map<string | symbol, unknown>();
  const handle: object = new Proxy({}, {
    // The codec finds library objects by their `describe` method.
    has: (_target, name) => name === describe,
    get(_target, name) {
      if (name === Symbol.toStringTag) return `${className} (in the parent process)`;
      if (name === Symbol.asyncIterator) {
        const next = spec.iterate ?? "get";
        return listed(next) ? () => drain(id, next) : undefined;
      }
      if (name === Symbol.dispose && listed(DISPOSE)) name = DISPOSE;
      if (typeof name !== "string") return undefined;
      if (spec.constants && Object.hasOwn(spec.constants, name)) return spec.constants[name];
      if (Object.hasOwn(members, name)) {
        let member = methods.get(name);
        if (member === undefined) {
          member = objects.get(members[name].id) ?? makeHandle(members[name]);
          methods.set(name, member);
        }
        return member;
      }
      const instead = spec.immediate && Object.hasOwn(spec.immediate, name)
        ? spec.immediate[name]
        : name.endsWith("Sync") && listed(name.slice(0, -4))
        ? `await ${lowerFirst(className)}.${name.slice(0, -4)}()`
        : undefined;
      if (instead !== undefined) {
        throw new Error(
          `${className}.${name} cannot answer at once in a child process, where the ` +
            `${className} lives in the parent; use ${instead} instead`,
        );
      }
      if (!listed(name)) return undefined;
      let method = methods.get(name);
      if (method === undefined) {
        method = makeMethod(id, name, spec);
        methods.set(name, method);
      }
      return method;
    },
  });
  revivedHandles.set(handle, state);
  return handle;
}

/** The function a handle's method `name` is: a call, or a one-way send. */
function makeMethod(id: string, name: string, spec: RemoteSpec): (...args: unknown[]) => unknown {
  if (name === DISPOSE) {
    // `using` disposes a lease once; disposing it again does nothing, as in the parent.
    let disposed = false;
    return () => {
      if (disposed) return;
      disposed = true;
      connected().send(id, name, []);
    };
  }
  if (spec.oneWay?.includes(name)) {
    return (...args) => {
      connected().send(id, name, args);
    };
  }
  const waits = spec.calls![name].indexOf("options");
  return (...args) => connected().call(id, name, args, waits === -1 ? undefined : waits);
}

/** `for await` over a handle: `get()` until the parent says the queue is closed. */
async function* drain(id: string, method: string): AsyncGenerator<unknown, void, undefined> {
  while (true) {
    try {
      yield await connected().call(id, method, [], 0);
    } catch (error) {
      if ((error as Error)?.name === "QueueClosedError") return;
      throw error;
    }
  }
}

function connected(): BrokerClient {
  if (client === undefined) {
    throw new Error("This shared object's handle works only inside a child process of its owner");
  }
  return client;
}

function lowerFirst(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

// Revives a handle: the object itself in the parent that owns it, a proxy elsewhere.
registerReviver(KIND, (state: RemoteState) => objects.get(state.id) ?? makeHandle(state));
