// Bad options throw errors that name the option and the value; good pools keep working.
import assert from "node:assert/strict";
import { ThreadPool } from "../mod.ts";
import { within, work } from "./_helpers.ts";

for (const value of [0, -1, 1.5, NaN, "2"]) {
  // A number out of range is a RangeError; a value of another type, a TypeError.
  const kind = typeof value === "number" ? RangeError : TypeError;
  Deno.test(`maxWorkers ${String(value)} is a ${kind.name} naming it`, () => {
    assert.throws(
      () => new ThreadPool({ maxWorkers: value as number }),
      (error: Error) =>
        error instanceof kind && error.message.includes("'maxWorkers'") &&
        error.message.includes(
          `current value is ${typeof value === "string" ? `"${value}"` : value}`,
        ),
    );
  });
}

Deno.test("other numeric options are checked", () => {
  assert.throws(() => new ThreadPool({ minWorkers: -1 }), /'minWorkers'.*-1/);
  assert.throws(() => new ThreadPool({ maxWorkers: 1, minWorkers: 2 }), /must not exceed/);
  assert.throws(() => new ThreadPool({ idleTimeout: -5 }), /'idleTimeout'.*-5/);
  assert.throws(() => new ThreadPool({ maxTasksPerWorker: 0 }), /'maxTasksPerWorker'.*0/);
  assert.throws(() => new ThreadPool({ maxQueue: 1.5 }), /'maxQueue'.*1\.5/);
  assert.throws(() => new ThreadPool({ initArgs: 3 as never }), /'initArgs' must be an array/);
  assert.throws(
    () => new ThreadPool({ initializer: 3 as never }),
    /'initializer' must be a function/,
  );
});

Deno.test("an unknown option is a TypeError naming it and listing the known ones", () => {
  assert.throws(
    () => new ThreadPool({ maxWorker: 2 } as never),
    (error: Error) =>
      error instanceof TypeError && /unknown option 'maxWorker'/.test(error.message) &&
      /maxWorkers/.test(error.message),
  );
});

Deno.test("bad task arguments are named, and the pool keeps working", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  assert.throws(() => pool.submit(42 as never), /must be a function or a TaskRef.*42/);
  assert.throws(() => pool.submit(Math.max as never), /built-in or bound function/);
  assert.throws(() => pool.apply(work.add, 1 as never), /'args' must be an array/);
  assert.throws(() => pool.apply(work.add, [1, 2], { timeout: -1 }), /'timeout'.*-1/);
  await assert.rejects(pool.map(work.fib, [1], { chunkSize: 0 }), /'chunkSize'.*0/);
  assert.equal(await within(pool.submit(work.add, 1, 2)), 3);
});
