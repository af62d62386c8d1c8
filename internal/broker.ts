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
 * - Any library object passed to a process is registered here by number and
 *   described as a remote handle; the child revives a proxy that forwards
 *   every method. A method named in the class's `RemoteSpec.immediate` (one
 *   that must answer at once, like `tryGet` or `size`) throws in a child,
 *   naming the async form to use; `oneWay` methods (`close`, `release`) are
 *   sent in order without waiting for an answer.
 * - Calls from one child start in the order they arrive and run concurrently,
 *   so a `put` is not stuck behind a waiting `get`.
 * - Objects a call returns (a lease from `acquire()`) become handles too. A
 *   child that dies holding a lease has it released by its session here, and
 *   the primitive is marked with {@linkcode markOwnerDied}, so the next holder
 *   can learn of it.
 * - The broker keeps every object passed to a process alive for the life of
 *   the program: a child may use it at any time.
 *
 * @module
 */

import { SerializationError } from "../errors.ts";
import {
  describe,
  type DescribeContext,
  type Descriptor,
  encode,
  registerReviver,
  remote,
  type RemoteSpec,
  revive,
  type Shareable,
} from "./codec.ts";
import { packError, unpackError } from "./codec.ts";

/** The descriptor kind of a handle on a parent's object. */
const KIND = "@parallel/core.remote";

interface RemoteState {
  id: number;
  className: string;
  spec: RemoteSpec;
  /** Handles for the object's `RemoteSpec.members`. */
  members: Record<string, RemoteState>;
}

/** Child → parent: perform `method(...args)` on object `object`; `call` 0 wants no answer. */
export interface CallMessage {
  readonly type: "call";
  readonly call: number;
  readonly object: number;
  readonly method: string;
  readonly args: unknown[];
  readonly modules: string[];
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

// ---- parent side -----------------------------------------------------------

const objects = new Map<number, object>();
const objectIds = new WeakMap<object, number>();
let nextObjectId = 1;

function specOf(object: object): RemoteSpec {
  return (object as { [remote]?: RemoteSpec })[remote] ?? {};
}

/** Registers `object` and describes it as a handle a child can revive. */
function shareWithProcess(object: Shareable): Descriptor {
  const why = specOf(object).localOnly;
  if (why !== undefined) {
    throw new SerializationError(`Cannot send ${describeObject(object)} to a process: ${why}`);
  }
  let id = objectIds.get(object);
  if (id === undefined) {
    id = nextObjectId++;
    objectIds.set(object, id);
    objects.set(id, object);
  }
  const spec = specOf(object);
  const members: Record<string, RemoteState> = {};
  for (const name of spec.members ?? []) {
    members[name] = shareWithProcess((object as unknown as Record<string, Shareable>)[name])
      .state as RemoteState;
  }
  const state: RemoteState = {
    id,
    className: Object.getPrototypeOf(object)?.constructor?.name ?? "object",
    spec,
    members,
  };
  return { kind: KIND, module: import.meta.url, state };
}

/** The context a parent encodes arguments for a process with. */
export const parentContext: DescribeContext = { transport: "process", share: shareWithProcess };

const ownerDied = new WeakMap<object, number>();

/**
 * Records that a child died holding a lease on `primitive`; the lease has
 * been released for it. {@linkcode takeOwnerDied} reads the mark once.
 */
export function markOwnerDied(primitive: object): void {
  ownerDied.set(primitive, (ownerDied.get(primitive) ?? 0) + 1);
  marks++;
}

/** How many marks are unread: lets every lease skip the lookup while there are none. */
let marks = 0;

/** Whether a holder of `primitive` died since the last call; clears the mark. */
export function takeOwnerDied(primitive: object): boolean {
  if (marks === 0) return false;
  const died = ownerDied.has(primitive);
  if (died) {
    ownerDied.delete(primitive);
    marks--;
  }
  return died;
}

/** One child's calls, on the parent side; `close()` when the child is gone. */
export class BrokerSession {
  readonly #reply: (message: ReplyMessage) => void;
  /** Leases this child holds: lease handle → the primitive it came from. */
  readonly #leases = new Map<object, object>();
  /** Calls still running, by call number: aborted if the child aborts them or dies. */
  readonly #calls = new Map<number, AbortController>();
  #closed = false;

  /** @param reply Sends an answer to the child. */
  constructor(reply: (message: ReplyMessage) => void) {
    this.#reply = reply;
  }

  /** Performs a call from the child. */
  async perform(message: CallMessage): Promise<void> {
    let ok = true;
    let value: unknown;
    const abort = new AbortController();
    if (message.call !== 0) this.#calls.set(message.call, abort);
    try {
      const target = objects.get(message.object);
      if (target === undefined) throw new Error(`No shared object ${message.object} in the parent`);
      const spec = specOf(target);
      if (spec.immediate?.[message.method] !== undefined || message.method.endsWith("Sync")) {
        // Only the async forms cross: a blocking call would freeze the parent's event loop.
        throw new TypeError(`${message.method} cannot be called from a child process`);
      }
      const args = message.modules.length === 0
        ? message.args
        : await revive(message.args, message.modules, parentContext);
      const waits = spec.waits?.[message.method];
      if (waits !== undefined) {
        // A wait ends when the child aborts it, or when the child is gone.
        const options = (args[waits] ?? {}) as { signal?: AbortSignal };
        args[waits] = { ...options, signal: abort.signal };
      }
      const name = message.method === DISPOSE ? Symbol.dispose : message.method;
      const method = (target as Record<string | symbol, unknown>)[name];
      if (typeof method !== "function") {
        throw new TypeError(`${message.method} is not a method of ${describeObject(target)}`);
      }
      value = await method.apply(target, args);
      if (message.method === DISPOSE) {
        // A lease is used once: forget it, or every acquire would stay registered.
        this.#leases.delete(target);
        objects.delete(message.object);
      } else if (message.method === "release") {
        this.#forgetLeaseOn(target);
      }
      if (isLease(value)) {
        if (this.#closed) {
          // The child died while this acquire waited: nobody will release it.
          (value as Disposable)[Symbol.dispose]();
          return;
        }
        value = this.#holdLease(value as Disposable, target);
      }
    } catch (error) {
      ok = false;
      value = error;
    } finally {
      this.#calls.delete(message.call);
    }
    if (message.call === 0 || this.#closed) return;
    if (!ok) {
      this.#reply({ type: "reply", call: message.call, ok, value: packError(value), modules: [] });
      return;
    }
    const encoded = encode(value, parentContext);
    this.#reply({
      type: "reply",
      call: message.call,
      ok,
      value: encoded.value,
      modules: encoded.modules,
    });
  }

  /** The child aborted a waiting call (its `signal` fired). */
  abort(call: number): void {
    this.#calls.get(call)?.abort(new DOMException("The child aborted the wait", "AbortError"));
  }

  /**
   * The child released a primitive directly (`mutex.release()` rather than
   * disposing its lease): one of its leases on it is spent.
   */
  #forgetLeaseOn(primitive: object): void {
    for (const [handle, held] of this.#leases) {
      if (held !== primitive) continue;
      this.#leases.delete(handle);
      const id = objectIds.get(handle);
      if (id !== undefined) objects.delete(id);
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
        constants: {
          previousOwnerDied: (lease as { previousOwnerDied?: boolean }).previousOwnerDied ?? false,
        },
      } satisfies RemoteSpec,
    };
    this.#leases.set(handle, primitive);
    return handle;
  }

  /** The child is gone: release the leases it held and mark their primitives. */
  close(): void {
    this.#closed = true;
    for (const abort of this.#calls.values()) abort.abort(new Error("the child process ended"));
    this.#calls.clear();
    for (const [lease, primitive] of this.#leases) {
      markOwnerDied(primitive);
      try {
        (lease as Disposable)[Symbol.dispose]();
      } catch {
        // Already released.
      }
    }
    this.#leases.clear();
  }
}

/** The method name a child sends for `[Symbol.dispose]()` (a symbol cannot be serialized). */
const DISPOSE = "@dispose";

function isLease(value: unknown): boolean {
  return typeof value === "object" && value !== null &&
    typeof (value as Partial<Disposable>)[Symbol.dispose] === "function";
}

function describeObject(object: object): string {
  return `a ${Object.getPrototypeOf(object)?.constructor?.name ?? "shared object"}`;
}

// ---- child side ------------------------------------------------------------

/** How a child's handles reach the parent; set by the child's entry module. */
export interface BrokerClient {
  /**
   * Sends a call and resolves with the parent's answer. A `signal` in the
   * options at `waits` stays here; if it fires, the parent is told to stop.
   */
  call(object: number, method: string, args: unknown[], waits?: number): Promise<unknown>;
  /** Sends a call that wants no answer. */
  send(object: number, method: string, args: unknown[]): void;
}

let client: BrokerClient | undefined;

/** The child's context for encoding: its handles describe themselves; nothing else may cross. */
export const childContext: DescribeContext = {
  transport: "process",
  share(object) {
    const state = handleStates.get(object as object);
    if (state === undefined) {
      throw new SerializationError(
        `Cannot send ${describeObject(object)} made in a child process to its parent: ` +
          `shared objects must be created in the parent and passed to the child`,
      );
    }
    return { kind: KIND, module: import.meta.url, state };
  },
};

const handleStates = new WeakMap<object, RemoteState>();

/**
 * Connects this child's handles to its parent and returns the function that
 * settles calls as replies arrive.
 */
export function connectBroker(
  post: (message: CallMessage | AbortMessage) => void,
): (message: ReplyMessage) => void {
  const waiting = new Map<number, PromiseWithResolvers<unknown>>();
  let nextCall = 1;
  const encodeArgs = (args: unknown[]) => encode(args, childContext);
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
      post({ type: "call", call, object, method, args: encoded.value, modules: encoded.modules });
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
        modules: encoded.modules,
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

/** A child's stand-in for a parent's object: every method becomes a call. */
function makeHandle(state: RemoteState): object {
  const { id, className, spec, members } = state;
  const oneWay = new Set<string>(spec.oneWay ?? []);
  const methods = new Map<string | symbol, unknown>();
  const target = {};
  const handle: object = new Proxy(target, {
    // The codec finds library objects by their `describe` method.
    has: (_target, name) => name === describe,
    get(_target, name) {
      if (name === "then") return undefined; // not a thenable
      if (name === Symbol.asyncIterator) return () => drain(id);
      if (typeof name === "symbol" && name !== Symbol.dispose && name !== Symbol.asyncDispose) {
        return undefined;
      }
      if (typeof name === "string" && spec.constants && name in spec.constants) {
        return spec.constants[name];
      }
      if (typeof name === "string" && name in members) {
        let member = methods.get(name);
        if (member === undefined) {
          member = objects.get(members[name].id) ?? makeHandle(members[name]);
          methods.set(name, member);
        }
        return member;
      }
      if (name === Symbol.toStringTag) return `${className} (in the parent process)`;
      const instead = spec.immediate?.[name as string] ??
        (typeof name === "string" && name.endsWith("Sync")
          ? `await ${lowerFirst(className)}.${name.slice(0, -4)}()`
          : undefined);
      if (instead !== undefined) {
        throw new Error(
          `${className}.${String(name)} cannot answer at once in a child process, where the ` +
            `${className} lives in the parent; use ${instead} instead`,
        );
      }
      let method = methods.get(name);
      if (method === undefined) {
        // `using` disposes a lease: that is its release, sent without waiting.
        const called = typeof name === "symbol" ? DISPOSE : name;
        method = oneWay.has(called) || typeof name === "symbol"
          ? (...args: unknown[]) => {
            connected().send(id, called, args);
          }
          : (...args: unknown[]) => connected().call(id, called, args, spec.waits?.[called]);
        methods.set(name, method);
      }
      return method;
    },
  });
  handleStates.set(handle, state);
  return handle;
}

/** `for await` over a handle: `get()` until the parent says the queue is closed. */
async function* drain(id: number): AsyncGenerator<unknown, void, undefined> {
  while (true) {
    try {
      yield await connected().call(id, "get", []);
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
