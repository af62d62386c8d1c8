/**
 * `SharedArray`: Python's `multiprocessing.Array`, a fixed-length typed array
 * in shared memory, usable from threads directly and from processes through
 * the parent's broker.
 *
 * @module
 */

import { show } from "../internal/options.ts";
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

const reviving = Symbol("reviving");

/**
 * A fixed-length typed array in shared memory. Each element operation is
 * atomic; each returns a promise, which works everywhere, and has a `Sync`
 * twin for threads and the main thread. `lock` is a `Mutex` for updates that
 * span several elements.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SharedArray, ThreadPool } from "@parallel/core";
 * const squares = new SharedArray("float64", 4);
 * await using pool = new ThreadPool({ maxWorkers: 2 });
 * await pool.starmap(
 *   (array: SharedArray<"float64">, i: number) => array.setSync(i, i * i),
 *   [0, 1, 2, 3].map((i) => [squares, i] as [SharedArray<"float64">, number]),
 * );
 * assert.deepEqual(await squares.toArray(), [0, 1, 4, 9]);
 * ```
 */
export class SharedArray<T extends CellType = CellType> {
  readonly #store: CellStore;
  /** A mutex for updates that span several elements. */
  readonly lock: Mutex;

  /**
   * Creates a shared array.
   *
   * @param type The element type (see `Value`).
   * @param lengthOrItems The length (elements start at 0), or the initial items.
   * @throws {TypeError} When `type` is unknown or an item is of the wrong kind.
   * @throws {RangeError} When the length is not a whole number >= 0.
   */
  constructor(type: T, lengthOrItems: number | Iterable<CellValue<T>>) {
    const revived = (lengthOrItems as unknown as {
      [reviving]?: { store: CellStore; lock: Mutex };
    })?.[reviving];
    if (revived) {
      this.#store = revived.store;
      this.lock = revived.lock;
      return;
    }
    const where = "Cannot create SharedArray";
    const checked = checkCellType(type, where);
    const items = typeof lengthOrItems === "number" ? undefined : [...lengthOrItems];
    const length = items?.length ?? lengthOrItems as number;
    if (!Number.isInteger(length) || length < 0) {
      throw new RangeError(
        `${where}: 'length' must be a whole number >= 0: current value is ${show(length)}`,
      );
    }
    this.#store = new CellStore(checked, length);
    items?.forEach((item, index) => {
      this.#store.check(item, where);
      this.#store.store(index, item);
    });
    this.lock = new Mutex();
  }

  /** The number of elements. */
  get length(): number {
    return this.#store.length;
  }

  /** The element type. */
  get type(): T {
    return this.#store.type as T;
  }

  /**
   * Reads element `index`.
   *
   * @param index Which element.
   * @returns Its value.
   * @throws {RangeError} When `index` is out of range.
   */
  get(index: number): Promise<CellValue<T>> {
    try {
      return Promise.resolve(this.getSync(index));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Reads element `index` at once.
   *
   * @param index Which element.
   * @returns Its value.
   * @throws {RangeError} When `index` is out of range.
   */
  getSync(index: number): CellValue<T> {
    this.#store.checkIndex(index, "SharedArray.get");
    return this.#store.load(index) as CellValue<T>;
  }

  /**
   * Writes element `index`.
   *
   * @param index Which element.
   * @param value Its new value.
   * @throws {RangeError} When `index` is out of range.
   * @throws {TypeError} When `value` is of the wrong kind.
   */
  set(index: number, value: CellValue<T>): Promise<void> {
    try {
      this.setSync(index, value);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Writes element `index` at once.
   *
   * @param index Which element.
   * @param value Its new value.
   * @throws {RangeError} When `index` is out of range.
   * @throws {TypeError} When `value` is of the wrong kind.
   */
  setSync(index: number, value: CellValue<T>): void {
    this.#store.checkIndex(index, "SharedArray.set");
    this.#store.check(value, "SharedArray.set");
    this.#store.store(index, value);
  }

  /**
   * Adds `delta` to element `index` atomically.
   *
   * @param index Which element.
   * @param delta What to add.
   * @returns The element's new value.
   * @throws {RangeError} When `index` is out of range.
   */
  add(index: number, delta: CellValue<T>): Promise<CellValue<T>> {
    try {
      return Promise.resolve(this.addSync(index, delta));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Adds `delta` to element `index` atomically, at once.
   *
   * @param index Which element.
   * @param delta What to add.
   * @returns The element's new value.
   * @throws {RangeError} When `index` is out of range.
   */
  addSync(index: number, delta: CellValue<T>): CellValue<T> {
    this.#store.checkIndex(index, "SharedArray.add");
    this.#store.check(delta, "SharedArray.add");
    return this.#store.add(index, delta) as CellValue<T>;
  }

  /**
   * Copies the elements into a plain array (each read atomic, not the whole).
   *
   * @returns The elements.
   */
  toArray(): Promise<CellValue<T>[]> {
    return Promise.resolve(this.toArraySync());
  }

  /**
   * Copies the elements into a plain array, at once.
   *
   * @returns The elements.
   */
  toArraySync(): CellValue<T>[] {
    return Array.from(
      { length: this.#store.length },
      (_, i) => this.#store.load(i) as CellValue<T>,
    );
  }

  /**
   * Describes this array for a thread: the same shared memory.
   *
   * @ignore
   */
  [describe](context: DescribeContext): Descriptor {
    return {
      kind: "SharedArray",
      module: import.meta.url,
      state: {
        type: this.#store.type,
        length: this.#store.length,
        ...this.#store.stateFor(context, "SharedArray"),
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
      calls: { get: ["number"], set: ["number", "value"], add: ["number", "value"], toArray: [] },
      constants: { type: this.#store.type, length: this.#store.length },
      members: ["lock"],
      direct: true,
    };
  }
}

registerReviver("SharedArray", (state, context) => {
  const store = new CellStore(state.type, state.length, state);
  const lock = reviveDescriptor(state.lock, context) as Mutex;
  return new SharedArray(state.type, { [reviving]: { store, lock } } as never);
});
