/**
 * `Value`: Python's `multiprocessing.Value`, one typed number in shared
 * memory, usable from threads directly and from processes through the
 * parent's broker.
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
import { Mutex } from "../sync/mutex.ts";
import { CellStore, type CellType, type CellValue, checkCellType } from "./_cells.ts";

export type { CellType, CellValue } from "./_cells.ts";

const reviving = Symbol("reviving");

/**
 * A typed number in shared memory. `load`, `store`, `add` and
 * `compareExchange` are atomic; each returns a promise, which works
 * everywhere (main thread, threads, child processes), and has a `Sync` twin
 * for threads and the main thread. `lock` is a `Mutex` for compound updates.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProcessPool, Value } from "@parallel/core";
 * const counter = new Value("int32", 0);
 * await using pool = new ProcessPool({ maxWorkers: 2 });
 * await pool.map(async (v: Value<"int32">) => await v.add(1), [counter, counter, counter]);
 * assert.deepEqual(await counter.load(), 3);
 * ```
 */
export class Value<T extends CellType = CellType> {
  readonly #store: CellStore;
  /** A mutex for compound updates (`using _ = await v.lock.acquire()`); single operations do not need it. */
  readonly lock: Mutex;

  /**
   * Creates a shared value.
   *
   * @param type The element type: `"int8"` … `"uint32"`, `"bigint64"`, `"biguint64"`,
   *   `"float32"`, `"float64"`.
   * @param initial The starting value (a bigint for the 64-bit integer types). Default 0.
   * @throws {TypeError} When `type` is unknown or `initial` is of the wrong kind.
   */
  constructor(type: T, initial?: CellValue<T>) {
    const revived = (initial as unknown as { [reviving]?: { store: CellStore; lock: Mutex } })?.[
      reviving
    ];
    if (revived) {
      this.#store = revived.store;
      this.lock = revived.lock;
      return;
    }
    const where = "Cannot create Value";
    this.#store = new CellStore(checkCellType(type, where), 1);
    const start = initial ?? (type === "bigint64" || type === "biguint64" ? 0n : 0);
    this.#store.check(start, where);
    this.#store.store(0, start);
    this.lock = new Mutex();
  }

  /** The element type. */
  get type(): T {
    return this.#store.type as T;
  }

  /**
   * Reads the value.
   *
   * @returns The value.
   */
  load(): Promise<CellValue<T>> {
    return Promise.resolve(this.loadSync());
  }

  /**
   * Reads the value at once.
   *
   * @returns The value.
   */
  loadSync(): CellValue<T> {
    return this.#store.load(0) as CellValue<T>;
  }

  /**
   * Writes the value.
   *
   * @param value The new value.
   * @throws {TypeError} When `value` is of the wrong kind.
   */
  store(value: CellValue<T>): Promise<void> {
    try {
      this.storeSync(value);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Writes the value at once.
   *
   * @param value The new value.
   * @throws {TypeError} When `value` is of the wrong kind.
   */
  storeSync(value: CellValue<T>): void {
    this.#store.check(value, "Value.store");
    this.#store.store(0, value);
  }

  /**
   * Adds `delta` atomically.
   *
   * @param delta What to add (negative to subtract).
   * @returns The new value.
   * @throws {TypeError} When `delta` is of the wrong kind.
   */
  add(delta: CellValue<T>): Promise<CellValue<T>> {
    try {
      return Promise.resolve(this.addSync(delta));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Adds `delta` atomically, at once.
   *
   * @param delta What to add (negative to subtract).
   * @returns The new value.
   * @throws {TypeError} When `delta` is of the wrong kind.
   */
  addSync(delta: CellValue<T>): CellValue<T> {
    this.#store.check(delta, "Value.add");
    return this.#store.add(0, delta) as CellValue<T>;
  }

  /**
   * Sets the value to `value` if it is `expected` now, atomically.
   *
   * @param expected The value it must hold.
   * @param value The value to set.
   * @returns Whether it was set.
   * @throws {TypeError} When a value is of the wrong kind.
   */
  compareExchange(expected: CellValue<T>, value: CellValue<T>): Promise<boolean> {
    try {
      return Promise.resolve(this.compareExchangeSync(expected, value));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Sets the value to `value` if it is `expected` now, atomically, at once.
   *
   * @param expected The value it must hold.
   * @param value The value to set.
   * @returns Whether it was set.
   * @throws {TypeError} When a value is of the wrong kind.
   */
  compareExchangeSync(expected: CellValue<T>, value: CellValue<T>): boolean {
    this.#store.check(expected, "Value.compareExchange");
    this.#store.check(value, "Value.compareExchange");
    return this.#store.compareExchange(0, expected, value);
  }

  /**
   * Describes this value for a thread: the same shared memory.
   *
   * @ignore
   */
  [describe](context: DescribeContext): Descriptor {
    return {
      kind: "Value",
      module: import.meta.url,
      state: {
        type: this.#store.type,
        ...this.#store.stateFor(context, "Value"),
        lock: context.share?.(this.lock) ?? this.lock[describe](context),
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
      calls: { load: [], store: ["value"], add: ["value"], compareExchange: ["value", "value"] },
      constants: { type: this.#store.type },
      members: ["lock"],
      direct: true,
    };
  }
}

registerReviver("Value", (state, context) => {
  const store = new CellStore(state.type, 1, state);
  const lock = reviveDescriptor(state.lock, context) as Mutex;
  return new Value(state.type, { [reviving]: { store, lock } } as never);
});
