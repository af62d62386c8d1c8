/**
 * Argument and option checks, in one place for the pools, `Thread` and
 * `Process`, the queues, the `sync/` primitives and the waits. Every error
 * names where it happened, the option and its value:
 * `Cannot create ThreadPool: 'maxWorkers' must be a whole number >= 1: current value is 0`.
 *
 * @module
 */

import { describeType } from "./codec.ts";

/**
 * A value as an error message shows it: strings quoted (the first 100
 * characters), bigints with their `n`, objects by their kind only. The value
 * may come from a child process, so nothing of it is converted or called:
 * `String()` of a small array can build gigabytes of text.
 */
export function show(value: unknown): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
    case "bigint":
      return `${value}n`;
    case "symbol":
      return "a symbol";
    case "object":
    case "function":
      return describeType(value);
    default:
      return String(value);
  }
}

/**
 * Checks that `options` is an object whose keys are all in `known`.
 *
 * @throws {TypeError} Naming the unknown key and the known ones.
 */
export function checkOptionNames(options: unknown, known: readonly string[], where: string): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${where}: options must be an object: current value is ${show(options)}`);
  }
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) {
      throw new TypeError(
        `${where}: unknown option '${name}'; known options are: ${known.join(", ")}`,
      );
    }
  }
}

/**
 * Checks that `value` is a whole number from `min` to `max` and returns it.
 *
 * @throws {TypeError} When it is not a number.
 * @throws {RangeError} When it is not whole or out of range.
 */
export function wholeNumber(
  value: unknown,
  name: string,
  min: number,
  where: string,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const wanted = `'${name}' must be a whole number >= ${min}` +
    (max < Number.MAX_SAFE_INTEGER && typeof value === "number" && value > max
      ? ` and <= ${max}`
      : "");
  if (typeof value !== "number") {
    throw new TypeError(`${where}: ${wanted}: current value is ${show(value)}`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${where}: ${wanted}: current value is ${show(value)}`);
  }
  return value;
}

/**
 * Checks that an option named `name` is a number of milliseconds >= 0
 * (`Infinity` allowed) and returns it; more than a timer can wait (about
 * 24.8 days) is returned as `Infinity`.
 *
 * @throws {TypeError} Naming the option and the value, when it is not a number.
 * @throws {RangeError} When it is negative or NaN.
 */
export function checkMilliseconds(value: unknown, name: string, where: string): number {
  if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
    const kind = typeof value === "number" ? RangeError : TypeError;
    throw new kind(
      `${where}: '${name}' must be a number of milliseconds >= 0: current value is ${show(value)}`,
    );
  }
  // A timer cannot wait longer (setTimeout would fire at once): that long is never.
  return value > MAX_TIMER_MS ? Infinity : value;
}

/** The longest a timer waits (the longest `setTimeout` and `setInterval` allow): about 24.8 days. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Checks that `value` is an array and returns it.
 *
 * @throws {TypeError} Naming the argument and the value, when it is not.
 */
export function checkArray<T>(value: T[] | unknown, name: string, where: string): T[] {
  if (!Array.isArray(value)) {
    throw new TypeError(`${where}: '${name}' must be an array: current value is ${show(value)}`);
  }
  return value;
}
