// trace: true and pool.trace(): a timeline in Chrome's trace event format.
import assert from "node:assert/strict";
import { ProcessPool, ThreadPool, type TraceEvent } from "../mod.ts";
import { failure, within, work } from "./_helpers.ts";

function lanes(events: TraceEvent[]): Map<number, string> {
  return new Map(
    events.filter((e) => e.ph === "M" && e.name === "thread_name")
      .map((e) => [e.tid, String(e.args?.name)]),
  );
}

for (const Pool of [ThreadPool, ProcessPool]) {
  Deno.test(`${Pool.name}: trace() has each task's wait and run, on its worker's lane`, async () => {
    await using pool = new Pool({ maxWorkers: 2, trace: true });
    const ok = [1, 2, 3, 4].map((i) => pool.submit(work.sleep, 20, i));
    const failing = pool.submit(work.fail, "no");
    await within(Promise.all(ok));
    await failure(failing);
    const queued = pool.submit(work.add, 1, 2);
    queued.cancel();
    await failure(queued);

    const { traceEvents, displayTimeUnit } = JSON.parse(JSON.stringify(pool.trace()));
    assert.equal(displayTimeUnit, "ms");
    const names = lanes(traceEvents);
    assert.equal(names.get(0), "queue");
    const process = traceEvents.find((e: TraceEvent) => e.name === "process_name");
    assert.match(process.args.name, new RegExp(`^${Pool.name}-\\d+$`));
    const runs = traceEvents.filter((e: TraceEvent) => e.ph === "X" && e.tid > 0);
    const waits = traceEvents.filter((e: TraceEvent) => e.ph === "X" && e.tid === 0);
    assert.deepEqual(
      runs.map((e: TraceEvent) => `${e.name}:${e.args?.outcome}`).sort(),
      ["fail:failed", "sleep:returned", "sleep:returned", "sleep:returned", "sleep:returned"],
    );
    assert.equal(waits.length, 6);
    assert.deepEqual(
      waits.filter((e: TraceEvent) => e.args?.outcome === "cancelled").map((e: TraceEvent) =>
        e.name
      ),
      ["add (waiting)"],
    );
    for (const run of runs) {
      assert.match(names.get(run.tid)!, new RegExp(`^${Pool.name}-\\d+-worker-\\d$`));
      const wait = waits.find((e: TraceEvent) => e.args?.task === run.args?.task)!;
      assert.ok(run.dur >= 0 && wait.ts <= run.ts, JSON.stringify({ run, wait }));
    }
  });
}

Deno.test("trace() needs trace: true, and trace must be a boolean", async () => {
  await using pool = new ThreadPool({ maxWorkers: 1 });
  assert.throws(() => pool.trace(), {
    message: /ThreadPool-\d+\.trace\(\): create the pool with \{ trace: true \} to record one/,
  });
  assert.throws(() => new ProcessPool({ trace: "yes" as never }), {
    name: "TypeError",
    message: /'trace' must be a boolean: current value is "yes"/,
  });
});
