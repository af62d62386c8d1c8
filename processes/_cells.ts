/**
 * Typed cells in shared memory: what `Value` and `SharedArray` are made of.
 *
 * ```text
 *   cells:  TypedArray(length) of the chosen type, over shared memory (memory.ts)
 *   guard:  Int32Array(1)      0 free, 1 held: makes float updates atomic
 * ```
 *
 * Integer types (`int8` … `uint32`, `bigint64`, `biguint64`) are updated with
 * `Atomics` directly. `Atomics` does not work on float arrays, so `float32`
 * and `float64` cells are read and written under `guard`, a spin lock held
 * only for one read or write (a few nanoseconds, so the spin is short). The
 * user's `lock` (a `Mutex`) is separate: holding it for a compound update
 * never blocks these single operations.
 *
 * @module
 */

import type { DescribeContext } from "../internal/codec.ts";
import { bufferOf, sharedBytes, type SharedRef } from "../internal/memory.ts";
import { show } from "../internal/options.ts";
import { sharedState } from "../sync/_shared.ts";

/** The element types of a `Value` or `SharedArray`, as in Python's typecodes. */
export const CELL_TYPES: Record<CellType, { BYTES_PER_ELEMENT: number }> = {
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  bigint64: BigInt64Array,
  biguint64: BigUint64Array,
  float32: Float32Array,
  float64: Float64Array,
};

/** The name of an element type: `"int32"`, `"float64"`, `"bigint64"`… */
export type CellType =
  | "int8"
  | "uint8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "bigint64"
  | "biguint64"
  | "float32"
  | "float64";

/** The JavaScript type a cell of `T` holds: `bigint` for the 64-bit integer types. */
export type CellValue<T extends CellType> = T extends "bigint64" | "biguint64" ? bigint : number;

/** Any of the typed arrays above, indexed loosely (the type is checked at the edges). */
type Cells = { [index: number]: any; readonly buffer: ArrayBufferLike };
type CellsConstructor = new (source: ArrayBufferLike | number) => Cells;
/** A store's memory in transit. */
type CellRefs = { cells: SharedRef; guard: SharedRef };
/** `Atomics` takes any integer typed array; this is the view it is handed as. */
type AtomicCells = Int32Array<SharedArrayBuffer>;

/** Shared cells of one type with the operations `Value` and `SharedArray` need. */
export class CellStore {
  readonly type: CellType;
  readonly length: number;
  readonly cells: Cells;
  readonly guard: Int32Array;
  readonly #float: boolean;
  readonly #big: boolean;
  /** One cell of this type, not shared: wraps a value as the cells do, with no allocation. */
  readonly #scratch: Cells;

  constructor(type: CellType, length: number, state?: CellRefs) {
    const View = CELL_TYPES[type] as unknown as CellsConstructor & { BYTES_PER_ELEMENT: number };
    this.type = type;
    this.length = length;
    this.cells = new View(
      state ? bufferOf(state.cells) : sharedBytes(length * View.BYTES_PER_ELEMENT),
    );
    this.guard = new Int32Array(state ? bufferOf(state.guard) : sharedBytes(4));
    this.#float = type === "float32" || type === "float64";
    this.#big = type === "bigint64" || type === "biguint64";
    this.#scratch = new View(1);
  }

  /** What a thread, or a child that maps this program's memory, needs to rebuild this store. */
  stateFor(context: DescribeContext, name: string): CellRefs {
    return {
      cells: sharedState(context, this.cells.buffer, name),
      guard: sharedState(context, this.guard.buffer, name),
    };
  }

  /** Checks that `value` fits this type (a bigint for 64-bit integers, else a number). */
  check(value: unknown, where: string): void {
    if (this.#big ? typeof value !== "bigint" : typeof value !== "number") {
      throw new TypeError(
        `${where}: a ${this.type} holds ${this.#big ? "a bigint" : "a number"}: current value is ${
          show(value)
        }`,
      );
    }
  }

  checkIndex(index: unknown, where: string): void {
    if (
      typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= this.length
    ) {
      throw new RangeError(
        `${where}: 'index' must be a whole number from 0 to ${this.length - 1}: current value is ${
          show(index)
        }`,
      );
    }
  }

  load(index: number): number | bigint {
    if (!this.#float) return Atomics.load(this.cells as AtomicCells, index);
    return this.#guarded(() => this.cells[index]);
  }

  store(index: number, value: number | bigint): void {
    if (!this.#float) {
      Atomics.store(this.cells as AtomicCells, index, value as number);
      return;
    }
    this.#guarded(() => (this.cells[index] = value as number));
  }

  /** Adds `delta` and returns the new value (wrapping as the type does). */
  add(index: number, delta: number | bigint): number | bigint {
    if (this.#float) {
      return this.#guarded(
        () => (this.cells[index] = (this.cells[index] as number) + (delta as number)),
      );
    }
    const before: any = Atomics.add(this.cells as AtomicCells, index, delta as number);
    // The new value, wrapped as the cell's type wraps it.
    this.#scratch[0] = before + (delta as any);
    return this.#scratch[0];
  }

  /** Sets the cell to `value` if it holds `expected`; returns whether it did. */
  compareExchange(index: number, expected: number | bigint, value: number | bigint): boolean {
    if (this.#float) {
      return this.#guarded(() => {
        if (this.cells[index] !== expected) return false;
        this.cells[index] = value as number;
        return true;
      });
    }
    this.#scratch[0] = expected;
    const normalized = this.#scratch[0];
    const found = Atomics.compareExchange(
      this.cells as AtomicCells,
      index,
      normalized,
      value as number,
    );
    return found === normalized;
  }

  #guarded<T>(operation: () => T): T {
    let spins = 0;
    while (Atomics.compareExchange(this.guard, 0, 0, 1) !== 0) {
      // Held for one read or write by another thread: it is free again within nanoseconds,
      // unless its holder was a child process killed in those nanoseconds: then, after a
      // second, the guard is taken from it.
      if (++spins % 4096 === 0) this.#breakAbandonedGuard(spins);
    }
    try {
      return operation();
    } finally {
      Atomics.store(this.guard, 0, 0);
    }
  }

  /** Frees the guard once this caller has spun on it for over a second since its first check. */
  #guardSince = 0;
  #breakAbandonedGuard(spins: number): void {
    const now = performance.now();
    if (spins === 4096) this.#guardSince = now;
    else if (now - this.#guardSince > ABANDONED_GUARD_MS) Atomics.store(this.guard, 0, 0);
  }
}

/** How long a float cell's guard may stay held before it is taken as abandoned. */
const ABANDONED_GUARD_MS = 1_000;

/** Checks a type name. */
export function checkCellType(type: unknown, where: string): CellType {
  if (typeof type !== "string" || !(type in CELL_TYPES)) {
    throw new TypeError(
      `${where}: 'type' must be one of ${Object.keys(CELL_TYPES).join(", ")}: current value is ${
        JSON.stringify(type) ?? String(type)
      }`,
    );
  }
  return type as CellType;
}
