/**
 * How a task function travels to a worker: a `TaskRef` as its module URL
 * and export name, an inline function as its source text. Each distinct
 * function gets a number, so that a worker is sent its definition once and
 * every later job names it by number (see `RunMessage` in `protocol.ts`).
 *
 * @module
 */

import { isTaskRef } from "../tasks.ts";
import { show } from "./options.ts";
import type { FnSpec } from "./protocol.ts";

const fnSpecs = new WeakMap<object, FnSpec>();
/** Closures made afresh in a loop share one spec (and one id in the worker). */
const specsBySource = new Map<string, FnSpec>();
const fnIds = new WeakMap<FnSpec, number>();
let nextFnId = 1;

/** Turns a task function into what travels: a module reference or source text. */
export function toFnSpec(fn: unknown, where: string): FnSpec {
  if (isTaskRef(fn)) {
    let spec = fnSpecs.get(fn);
    if (spec === undefined) {
      spec = { module: fn.module, name: fn.name };
      fnSpecs.set(fn, spec);
    }
    return spec;
  }
  if (typeof fn !== "function") {
    throw new TypeError(
      `${where} must be a function or a TaskRef from tasks(url): current value is ${show(fn)}`,
    );
  }
  let spec = fnSpecs.get(fn);
  if (spec === undefined) {
    const source = Function.prototype.toString.call(fn);
    if (source.endsWith("{ [native code] }")) {
      throw new TypeError(
        `${where}: "${fn.name}" is a built-in or bound function, which cannot travel as source; ` +
          `wrap it in an arrow function or export it from a module and use tasks(url)`,
      );
    }
    if (source.startsWith("class")) {
      throw new TypeError(`${where}: "${fn.name}" is a class, not a function`);
    }
    const key = `${fn.name}\n${source}`;
    spec = specsBySource.get(key);
    if (spec === undefined) {
      spec = { source, name: fn.name };
      specsBySource.set(key, spec);
    }
    fnSpecs.set(fn, spec);
  }
  return spec;
}

/** The number that names `spec` in messages, the same for the program's life. */
export function fnIdOf(spec: FnSpec): number {
  let id = fnIds.get(spec);
  if (id === undefined) {
    id = nextFnId++;
    fnIds.set(spec, id);
  }
  return id;
}

/** A function's name for messages. */
export function fnName(spec: FnSpec): string {
  return spec.name || "anonymous";
}
