/**
 * `pipe()`: Python's `multiprocessing.Pipe()`, two connected ends over two
 * queues, one each way. Each end can go to a thread or a process.
 *
 * @module
 */

import {
  describe,
  type DescribeContext,
  type Descriptor,
  registerReviver,
  remote,
  type RemoteSpec,
  reviveDescriptor,
} from "../internal/codec.ts";
import { checkMilliseconds } from "../internal/options.ts";
import { runAsync, runSync, type WaitOptions } from "../internal/wait.ts";
import { deadlineIn } from "./_ring.ts";
import { Queue, queueRing } from "./queue.ts";

let connect: <T>(incoming: Queue<T>, outgoing: Queue<T>) => PipeEnd<T>;

/**
 * One end of a {@linkcode pipe}: what it sends arrives at the other end,
 * once and in order, and it receives what the other end sends. Pass it to a
 * thread or a process like any argument.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pipe } from "@parallel/core";
 * const [left, right] = pipe<string>();
 * await left.send("ping");
 * assert.equal(await right.recv(), "ping");
 * right.sendSync("pong");
 * assert.equal(await left.poll(), true);
 * assert.equal(left.recvSync(), "pong");
 * ```
 */
export class PipeEnd<T> {
  readonly #incoming: Queue<T>;
  readonly #outgoing: Queue<T>;

  static {
    connect = <T>(incoming: Queue<T>, outgoing: Queue<T>) => new PipeEnd(incoming, outgoing);
  }

  private constructor(incoming: Queue<T>, outgoing: Queue<T>) {
    this.#incoming = incoming;
    this.#outgoing = outgoing;
  }

  /**
   * Sends a value to the other end (copied as a `Queue` item is).
   *
   * @param value The value.
   * @throws {QueueClosedError} When either end was closed (the promise rejects).
   */
  send(value: T): Promise<void> {
    return this.#outgoing.put(value);
  }

  /**
   * Sends a value to the other end at once.
   *
   * @param value The value.
   * @throws {QueueClosedError} When either end was closed.
   */
  sendSync(value: T): void {
    this.#outgoing.putSync(value);
  }

  /**
   * Receives the next value the other end sent, waiting for one.
   *
   * @param options `timeout` in milliseconds, and a `signal` to stop waiting.
   * @returns The value.
   * @throws {QueueClosedError} When either end was closed and nothing is left
   *   to receive (Python's `EOFError`).
   * @throws {TimeoutError} When `timeout` passes first.
   */
  recv(options?: WaitOptions): Promise<T> {
    return this.#incoming.get(options);
  }

  /**
   * Receives the next value, blocking the calling thread while there is none.
   *
   * @param options `timeout` in milliseconds.
   * @returns The value.
   * @throws {QueueClosedError} When either end was closed and nothing is left.
   * @throws {TimeoutError} When `timeout` passes first.
   */
  recvSync(options?: WaitOptions): T {
    return this.#incoming.getSync(options);
  }

  /**
   * Whether a value is waiting to be received (or the pipe was closed, so
   * that `recv` answers at once), waiting up to `timeout` for one, as Python's
   * `Connection.poll` does. Takes nothing.
   *
   * @param timeout Milliseconds to wait: 0 (the default) looks and returns,
   *   `Infinity` waits until there is something.
   * @param options `signal`: stops the wait (the promise rejects with its reason).
   * @returns `true` when `recv` would answer at once.
   * @throws {RangeError} When `timeout` is negative.
   */
  async poll(timeout = 0, options?: { signal?: AbortSignal }): Promise<boolean> {
    const ring = queueRing(this.#incoming);
    const ms = checkMilliseconds(timeout, "timeout", `${ring.label} (a pipe end).poll`);
    const signal = options?.signal;
    signal?.throwIfAborted();
    return await runAsync(ring.pollSteps(deadlineIn(ms), signal, false));
  }

  /**
   * `poll`, blocking the calling thread while it waits.
   *
   * @param timeout Milliseconds to wait (default 0).
   * @returns `true` when `recvSync` would answer at once.
   * @throws {RangeError} When `timeout` is negative.
   */
  pollSync(timeout = 0): boolean {
    const ring = queueRing(this.#incoming);
    const ms = checkMilliseconds(timeout, "timeout", `${ring.label} (a pipe end).pollSync`);
    return runSync(ring.pollSteps(deadlineIn(ms), undefined, true));
  }

  /**
   * Closes the pipe, both ways: the other end receives what was sent before,
   * then `QueueClosedError`; sending from either end fails. Calling it again
   * does nothing.
   */
  close(): void {
    this.#outgoing.close();
    this.#incoming.close();
  }

  /**
   * Iterates over the values as they arrive, ending once the pipe is closed
   * and nothing is left.
   *
   * @returns An async iterator of the values.
   */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this.#incoming[Symbol.asyncIterator]();
  }

  /**
   * Describes this end for a thread: its two queues.
   *
   * @ignore
   */
  [describe](context: DescribeContext): Descriptor {
    return {
      kind: "PipeEnd",
      module: import.meta.url,
      state: {
        incoming: this.#incoming[describe](context),
        outgoing: this.#outgoing[describe](context),
      },
    };
  }

  /**
   * How a child process uses it through the broker.
   *
   * @ignore
   */
  get [remote](): RemoteSpec {
    return {
      direct: true,
      calls: { send: ["value"], recv: ["options"], poll: ["number", "options"], close: [] },
      immediate: {
        sendSync: "await end.send(value)",
        recvSync: "await end.recv(options)",
        pollSync: "await end.poll(timeout)",
      },
      oneWay: ["close"],
      iterate: "recv",
    };
  }
}

/**
 * Two connected ends (Python's `multiprocessing.Pipe()`, duplex): what one
 * sends, the other receives, once and in order. Each end can be passed to a
 * thread or a process; values are copied as `Queue` items are.
 *
 * @example Talk to a thread
 * ```ts
 * import assert from "node:assert/strict";
 * import { pipe, type PipeEnd, Thread } from "@parallel/core";
 * const [here, there] = pipe<number>();
 * const echo = new Thread({
 *   target: async (end: PipeEnd<number>) => {
 *     for await (const n of end) await end.send(n * 2);
 *   },
 *   args: [there],
 * }).start();
 * await here.send(21);
 * assert.equal(await here.recv({ timeout: 10_000 }), 42);
 * here.close();
 * await echo.join();
 * ```
 *
 * @returns The two ends.
 */
export function pipe<T>(): [PipeEnd<T>, PipeEnd<T>] {
  const one = new Queue<T>();
  const other = new Queue<T>();
  return [connect(one, other), connect(other, one)];
}

registerReviver(
  "PipeEnd",
  (state: { incoming: Descriptor; outgoing: Descriptor }, context: DescribeContext) =>
    connect(
      reviveDescriptor(state.incoming, context) as Queue<unknown>,
      reviveDescriptor(state.outgoing, context) as Queue<unknown>,
    ),
);
