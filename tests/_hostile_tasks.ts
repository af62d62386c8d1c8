// Tasks that play a hostile child: each attacks its parent through the
// channel, the broker or the codec, using only what a task can reach (the
// library's own modules, which share its realm, and global prototypes).
import type { Mutex, Queue } from "../mod.ts";
import { revive } from "../internal/codec.ts";
import { childContext } from "../internal/broker.ts";
import { FrameWriter } from "../processes/_channel.ts";

type Message = Record<string, unknown>;

/** Runs `edit` on the next message this child sends, once. */
function onNextSend(edit: (message: Message, send: (message: unknown) => void) => void): void {
  const original = FrameWriter.prototype.send;
  FrameWriter.prototype.send = function (this: FrameWriter<unknown>, message: unknown) {
    FrameWriter.prototype.send = original;
    edit(message as Message, (forged) => original.call(this, forged));
  };
}

/** Rewrites the next JSON text the channel encodes, once. */
function onNextJson(edit: (text: string) => string): void {
  const original = JSON.stringify;
  JSON.stringify = function (this: unknown, ...args: Parameters<typeof JSON.stringify>) {
    JSON.stringify = original;
    return edit(original.apply(this, args));
  } as typeof JSON.stringify;
}

/**
 * Names a `data:` module that records `marker` in whichever realm imports it,
 * in every module list this child sends: through the prototype patch of the
 * issue, and by rewriting the messages themselves. Then makes a broker call
 * and returns a result that both carry a library object.
 */
export async function importThroughModuleLists(
  queue: Queue<unknown>,
  mutex: Mutex,
  marker: string,
): Promise<{ carry: Mutex }> {
  const url = `data:text/javascript,globalThis[${JSON.stringify(marker)}]=Deno.pid`;
  const iterate = Set.prototype[Symbol.iterator];
  Set.prototype[Symbol.iterator] = function* (this: Set<unknown>) {
    const items = [...iterate.call(this)];
    if (items.some((x) => typeof x === "string" && x.startsWith("file:"))) items.unshift(url);
    yield* items;
  } as typeof iterate;
  const send = FrameWriter.prototype.send;
  FrameWriter.prototype.send = function (this: FrameWriter<unknown>, message: unknown) {
    const forged = { ...(message as Message) };
    if (forged.type === "call") forged.modules = [url];
    if (forged.type === "done") forged.modules = { 0: [url] };
    send.call(this, forged);
  };
  await queue.put({ carry: mutex });
  return { carry: mutex };
}

/** Revives a handle of this child's own making, on the parent object `id`. */
function forge(known: object, id: unknown, spec?: Record<string, unknown>): Promise<any> {
  const { state } = childContext.share!(known as never) as { state: Record<string, unknown> };
  const forged = { ...state, id, spec: spec ?? state.spec };
  return revive(
    { "@parallel/core.descriptor": "@parallel/core.remote", module: "", state: forged },
    [],
    childContext,
  );
}

/** Tries every small object number, and a few tokens, for a queue it was not given. */
export async function forgeHandles(given: Queue<unknown>): Promise<unknown[]> {
  const taken: unknown[] = [];
  const ids: unknown[] = [
    ...Array.from({ length: 40 }, (_, i) => i + 1),
    "0".repeat(32),
    "f".repeat(32),
  ];
  for (const id of ids) {
    const handle = await forge(given, id);
    try {
      taken.push(await handle.get({ timeout: 0 }));
    } catch {
      // Not a queue, or empty.
    }
  }
  return taken;
}

/** Calls `method` on the queue it was given, through a handle whose spec lists it. */
export async function callUnlisted(given: Queue<unknown>, method: string): Promise<unknown> {
  const { state } = childContext.share!(given as never) as { state: { id: unknown } };
  const handle = await forge(given, state.id, { calls: { [method]: [] } });
  return await handle[method]();
}

/** Sends a result for a task this child was never given, before its own. */
export function resultForAnotherTask(): string {
  onNextSend((message, send) => {
    send({ type: "done", slots: [7], statuses: [0], values: ["forged"], modules: {}, busyMs: 0 });
    send(message);
  });
  return "real";
}

/** Sends its own result twice; returns this child's pid. */
export function resultTwice(): number {
  onNextSend((message, send) => {
    send(message);
    send(message);
  });
  return Deno.pid;
}

/** Sends a message of a type the protocol does not have. */
export function unknownMessage(): string {
  onNextSend((message, send) => {
    send({ type: "take-over" });
    send(message);
  });
  return "real";
}

/** Makes its result's frame text that is not JSON. */
export function garbageFrame(): string {
  onNextJson(() => "}{ not json");
  return "real";
}

/** Makes its result's frame claim a length far beyond any limit. */
export function oversizedFrame(): string {
  const original = DataView.prototype.setUint32;
  DataView.prototype.setUint32 = function (this: DataView, offset, _value, little) {
    DataView.prototype.setUint32 = original;
    return original.call(this, offset, 0x7fff_fff0, little);
  };
  return "real";
}

/** Returns an array nested 100,000 deep (JSON parses that much without complaint). */
export function absurdNesting(): string {
  const depth = 100_000;
  onNextJson((text) => text.replace('"DEEP"', "[".repeat(depth) + "0" + "]".repeat(depth)));
  return "DEEP";
}

/** Fails with an error whose name and own properties are the names of built-ins. */
export function hostileError(name: string): never {
  onNextSend((message, send) => {
    const values = (message.values as Record<string, unknown>[]).map((packed) => ({
      ...packed,
      props: JSON.parse('{"__proto__": {"polluted": true}, "constructor": 1}'),
    }));
    send({ ...message, values });
  });
  const error = new Error("hostile");
  error.name = name;
  throw error;
}

/** Leaves more calls waiting in the parent than a child may. */
export async function floodCalls(given: Queue<unknown>, calls: number): Promise<void> {
  await Promise.all(Array.from({ length: calls }, () => given.get()));
}

/** Says twice that its task started (each start arms the task's timeout). */
export function startTwice(): string {
  onNextSend((message, send) => {
    const slot = (message.slots as number[])[0];
    send({ type: "started", slot });
    send({ type: "started", slot });
    send(message);
  });
  return "real";
}

/** Answers its own task as "skipped", which only a withdrawn task may be. */
export function skipOwnTask(): string {
  onNextSend((message, send) => send({ ...message, statuses: [2] }));
  return "real";
}

/** Puts `item` with an argument list that carries a `constructor` of its own. */
export async function argsWithConstructor(given: Queue<unknown>, item: string): Promise<void> {
  onNextSend((message, send) => {
    const args: unknown[] & { constructor?: unknown } = [...message.args as unknown[]];
    args.constructor = 5; // node:v8 keeps an array's other properties
    send({ ...message, args });
  });
  await given.put(item);
}

/** Fails with a packed error whose message is an object that cannot become a string. */
export function unprintableErrorMessage(): never {
  onNextSend((message, send) => {
    const values = (message.values as Message[]).map((packed) => ({
      ...packed,
      message: { toString: 1, valueOf: 1 },
    }));
    send({ ...message, values });
  });
  throw new Error("x");
}

/** Returns a 26-byte array whose length is 2**32 - 2, flagged as holding handles. */
export function sparseResult(): string {
  onNextSend((message, send) => {
    const big: unknown[] = [];
    big[2 ** 32 - 3] = 1;
    send({ ...message, values: [big], modules: { 0: [] } });
  });
  return "x";
}

/** Puts such an array in a queue, then gets it back: the parent encodes it for the reply. */
export async function sparseThroughQueue(given: Queue<unknown>): Promise<number> {
  const big: unknown[] = [];
  big[2 ** 32 - 3] = 1;
  onNextSend((message, send) => send({ ...message, args: [big, undefined] }));
  await given.put(0);
  return ((await given.get()) as unknown[]).length;
}

/** An array of ~200 bytes whose `String()` has 2**26 characters. */
function dag(): unknown[] {
  let x: unknown[] = [];
  for (let i = 0; i < 26; i++) x = [x, x];
  return x;
}

/** Waits with a `timeout` that is such an array: the parent must not print it. */
export async function dagTimeout(given: Queue<unknown>): Promise<string> {
  try {
    await given.get({ timeout: dag() as never });
    return "no error";
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

/** Fails with a packed error whose message and name are such arrays. */
export function dagError(): never {
  onNextSend((message, send) => {
    const values = (message.values as Message[]).map((packed) => ({
      ...packed,
      name: dag(),
      message: dag(),
    }));
    send({ ...message, values });
  });
  throw new Error("x");
}

/** Gets an item the parent cannot send as JSON within the frame limit (honest use). */
export async function itemLength(given: Queue<string>): Promise<number> {
  return (await given.get()).length;
}

/** Leaves `count` puts of `mib` MiB each waiting on a full queue in the parent. */
export async function waitingPuts(
  given: Queue<Uint8Array>,
  count: number,
  mib: number,
): Promise<void> {
  const item = new Uint8Array(mib * 1024 * 1024);
  await Promise.all(Array.from({ length: count }, () => given.put(item)));
}
