/**
 * `ProcessPool`: Python's `ProcessPoolExecutor` and `multiprocessing.Pool`
 * over `deno run` child processes, on the same scheduler as `ThreadPool`.
 *
 * @module
 */

import { Pool, type PoolOptions } from "../internal/pool.ts";
import type { ChildOptions } from "./_transport.ts";
import "./_transport.ts";

/**
 * Options of a {@linkcode ProcessPool}: those of every pool, plus how its
 * children start (`permissions`, `env`, `clearEnv`, `cwd`, `maxHeapMB`).
 */
export interface ProcessPoolOptions extends PoolOptions, ChildOptions {}

/**
 * A pool of child processes that runs tasks in parallel, each child isolated:
 * its own memory and heap limit, its own permissions, and a crash that cannot
 * take the parent down.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProcessPool } from "@parallel/core";
 * await using pool = new ProcessPool({ maxWorkers: 2, permissions: "none" });
 * assert.deepEqual(await pool.map((x: number) => x * x, [1, 2, 3]), [1, 4, 9]);
 * ```
 *
 * @example The children's environment, directory and heap limit
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProcessPool } from "@parallel/core";
 * await using pool = new ProcessPool({
 *   maxWorkers: 1,
 *   env: { STAGE: "test" },
 *   cwd: Deno.cwd(),
 *   maxHeapMB: 256,
 * });
 * assert.equal(await pool.submit(() => Deno.env.get("STAGE")), "test");
 * ```
 */
export class ProcessPool extends Pool {
  /**
   * Creates a process pool. Children start on demand (or `minWorkers` at once).
   *
   * @param options The pool's options.
   * @throws {RangeError} When a numeric option is out of range (`maxWorkers: 0`).
   * @throws {TypeError} When an option is unknown or of the wrong type, or
   *   `permissions` asks for more than this program has.
   */
  constructor(options?: ProcessPoolOptions) {
    super("process", options ?? {}, "ProcessPool");
  }
}
