// A child talks to its parent over its own stdin and stdout: no socket, no
// file, no permission beyond starting it. What a child wrote before it died
// is read to the end, so every task that finished keeps its result, and a
// task the child holds can be cancelled without touching the child.
import assert from "node:assert/strict";
import { Event, Process, ProcessPool, Queue, tasks, Value } from "../mod.ts";
import { alive, failure, readUntil, runProgram, waitUntil, within, work } from "./_helpers.ts";

const pipes = tasks<typeof import("./_pipe_tasks.ts")>(
  new URL("./_pipe_tasks.ts", import.meta.url),
);
const hostile = pipes;

/** The inodes of the sockets process `pid` holds. */
function socketInodes(pid: number): string[] {
  const inodes: string[] = [];
  for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`));
      if (match) inodes.push(match[1]);
    } catch {
      // Closed meanwhile.
    }
  }
  return inodes;
}

Deno.test("a ProcessPool needs only --allow-read --allow-run, and nothing listens on a socket", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const program = `${dir}/program.ts`;
    await Deno.writeTextFile(
      program,
      `
      import { ProcessPool } from "${new URL("../mod.ts", import.meta.url).href}";
      await using pool = new ProcessPool({ maxWorkers: 2 });
      const squares = await pool.map((x: number) => x * x, [1, 2, 3]);
      const child = await pool.submit(() => Deno.pid);
      console.log(JSON.stringify([squares, Deno.pid, child]));
      await Deno.stdin.read(new Uint8Array(1)); // until the test has looked
    `,
    );
    const program$ = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-run", "--no-config", program],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines = program$.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const { value } = await within(lines.read());
    const [squares, parent, child] = JSON.parse(value ?? "null") ?? [];
    assert.deepEqual(squares, [1, 4, 9]);
    // Every Deno process holds a socket pair of its own; none of theirs may be a network
    // socket, or a Unix socket that listens.
    const inodes = new Set([parent, child].flatMap(socketInodes));
    const tcp = ["/proc/net/tcp", "/proc/net/tcp6"].flatMap((file) =>
      Deno.readTextFileSync(file).split("\n").slice(1).filter((line) =>
        inodes.has(line.trim().split(/\s+/)[9])
      )
    );
    assert.deepEqual(tcp, []);
    const listening = Deno.readTextFileSync("/proc/net/unix").split("\n").slice(1).filter(
      (line) => {
        const fields = line.trim().split(/\s+/);
        return inodes.has(fields[6]) && (parseInt(fields[3], 16) & 0x10000) !== 0;
      },
    );
    assert.deepEqual(listening, []);
    await program$.stdin.close();
    await lines.cancel();
    await program$.stderr.cancel();
    assert.equal((await within(program$.status)).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a task's output reaches the parent's stdout in order, before its result", async () => {
  const { code, stdout, stderr } = await runProgram(`
    import { ProcessPool, tasks } from "@parallel/core";
    const pipes = tasks(new URL(${JSON.stringify(new URL("./_pipe_tasks.ts", import.meta.url))}));
    await using pool = new ProcessPool({ maxWorkers: 1 });
    for (let i = 0; i < 3; i++) console.log("result " + await pool.submit(pipes.printed, i));
    console.log("node " + await pool.submit(pipes.nodeStdout, "behind the back\\n"));
    console.log("raw " + await pool.submit(pipes.rawBytes, [0xff, 0x41, 0xc0, 0x0a]));
    console.log("last " + await pool.submit(pipes.printed, 9));
  `);
  assert.equal(code, 0, stderr);
  const lines = stdout.split("\n");
  assert.deepEqual(lines.slice(0, 12), [
    "log 0",
    "write 0",
    "info 0",
    "result 0",
    "log 1",
    "write 1",
    "info 1",
    "result 1",
    "log 2",
    "write 2",
    "info 2",
    "result 2",
  ]);
  // Bytes written behind the library's back pass through, even bytes that are not text.
  assert.deepEqual(lines.slice(12, 14), ["behind the back", "node after"]);
  assert.deepEqual(
    new TextEncoder().encode(lines[14]),
    Uint8Array.of(0xef, 0xbf, 0xbd, 0x41, 0xef, 0xbf, 0xbd),
  );
  assert.deepEqual(lines.slice(15), ["raw real", "log 9", "write 9", "info 9", "last 9", ""]);
});

for (const ending of ["exit", "kill", "uncaught"] as const) {
  Deno.test(`a task that ends its child (${ending}) fails alone; every other task runs once`, async () => {
    await using pool = new ProcessPool({ maxWorkers: 1 });
    // Tiny tasks first: the pool then sends many jobs to the child in each batch.
    await within(Promise.all(Array.from({ length: 100 }, (_, i) => pool.submit(work.add, i, 1))));
    const runs = new Value("int32", 0);
    const count = 120;
    const outcomes = await within(
      Promise.allSettled(
        Array.from(
          { length: count },
          (_, i) =>
            pool.submit(pipes.counted, runs, i, i === 60 ? ending : i === 30 ? "throw" : "none"),
        ),
      ),
      30_000,
    );
    for (const [i, outcome] of outcomes.entries()) {
      if (i === 60) {
        assert.equal(outcome.status, "rejected");
        assert.equal((outcome as PromiseRejectedResult).reason.name, "WorkerCrashedError");
      } else if (i === 30) {
        assert.equal(outcome.status, "rejected");
        assert.equal((outcome as PromiseRejectedResult).reason.name, "TypeError");
      } else {
        assert.deepEqual(outcome, { status: "fulfilled", value: i }, `task ${i}`);
      }
    }
    // The task that ended its child ran once; none ran twice.
    assert.equal(runs.loadSync(), count);
    assert.equal(pool.stats.crashedWorkers, 1);
  });
}

Deno.test("cancelling a task the child holds leaves the child and every other task alone", async () => {
  // A child without FFI waits for the event through its parent: the reply that wakes it comes
  // down its stdin after the cancel, so it has read the cancel before it starts the next task.
  // (A child with FFI is woken at once, maybe before the cancel arrives; it then stops the task
  // as a running one, as the README says; the next test allows both.)
  await using pool = new ProcessPool({ maxWorkers: 1, permissions: "none" });
  await within(Promise.all(Array.from({ length: 100 }, (_, i) => pool.submit(work.add, i, 1))));
  const event = new Event();
  const first = pool.submit(pipes.pidAfter, event);
  const held = Array.from({ length: 4 }, () => pool.submit(pipes.pid));
  try {
    await waitUntil(() => pool.stats.runningTasks === 1);
    // Held by the child but not started: pending, not running.
    assert.equal(pool.stats.pendingTasks, 4);
    assert.equal(held[1].cancel(), true);
    assert.equal((await failure(held[1])).name, "CancelledError");
  } finally {
    event.set();
  }
  const pids = await within(Promise.all([first, held[0], held[2], held[3]]));
  assert.equal(new Set(pids).size, 1, "one child ran them all");
  assert.equal(alive(pids[0]), true);
  assert.equal(pool.stats.crashedWorkers, 0);
});

Deno.test("cancelling tasks while the child starts them: each is cancelled or runs, no other is touched", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1 });
  await within(Promise.all(Array.from({ length: 100 }, (_, i) => pool.submit(work.add, i, 1))));
  for (let round = 0; round < 5; round++) {
    const submitted = Array.from({ length: 300 }, (_, i) => pool.submit(work.add, i, 1));
    await new Promise((resolve) => setTimeout(resolve, round));
    const cancelled = submitted.map((task, i) => i % 3 === 0 && task.cancel());
    const outcomes = await within(Promise.allSettled(submitted));
    for (const [i, outcome] of outcomes.entries()) {
      if (cancelled[i]) {
        assert.equal(outcome.status, "rejected", `task ${i}`);
        assert.equal((outcome as PromiseRejectedResult).reason.name, "CancelledError");
      } else {
        assert.deepEqual(outcome, { status: "fulfilled", value: i + 1 }, `task ${i}`);
      }
    }
  }
  assert.equal(pool.stats.crashedWorkers, 0);
});

Deno.test("a Process whose target calls Deno.exit(0) ends normally", async () => {
  const child = new Process({ target: () => Deno.exit(0) }).start();
  assert.equal(await within(child.join()), undefined);
  assert.equal(child.exitCode, 0);
});

for (const signal of ["SIGKILL", "SIGTERM", "SIGINT"] as const) {
  Deno.test(`children exit when their parent gets ${signal}, in a synchronous loop or a futex wait; nothing is left on disk`, async () => {
    const dir = await Deno.makeTempDir();
    const tmp = `${dir}/tmp`;
    await Deno.mkdir(tmp);
    const pids: number[] = [];
    try {
      const program = `${dir}/parent.ts`;
      await Deno.writeTextFile(
        program,
        `
        import { Mutex, Process, ProcessPool, Value } from "${
          new URL("../mod.ts", import.meta.url).href
        }";
        const spin = () => { console.log("child", Deno.pid); const end = Date.now() + 60_000; while (Date.now() < end) {} };
        // A Process guards its child before its target starts.
        new Process({ target: spin }).start();
        // A child that maps this program's memory, asleep in the kernel on a Mutex held here.
        const held = new Mutex();
        held.acquireSync();
        new Process({
          target: (mutex: Mutex) => { console.log("child", Deno.pid); mutex.acquireSync(); },
          args: [held],
        }).start();
        // A pool's child guards itself once it has sent its first result.
        const spinning = new ProcessPool({ maxWorkers: 1 });
        await spinning.submit(() => 0);
        spinning.submit(spin);
        const waiting = new ProcessPool({ maxWorkers: 1 });
        waiting.submit(() => { console.log("child", Deno.pid); return new Promise(() => {}); });
        // A child started before any task guards itself as soon as it has read its init: its
        // first task may spin. (Sent once its initializer has run: a child of a loaded machine
        // starts slowly, and a task that arrives with the init is a waiting task's, guarded
        // after its first result.)
        const initialised = new Value("int32", 0);
        const ready = new ProcessPool({
          maxWorkers: 1,
          minWorkers: 1,
          initializer: (done: Value<"int32">) => done.storeSync(1),
          initArgs: [initialised],
        });
        while (initialised.loadSync() === 0) await new Promise((r) => setTimeout(r, 10));
        ready.submit(spin);
      `,
      );
      const parent = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--no-config", program],
        env: { TMPDIR: tmp },
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const reader = parent.stdout.pipeThrough(new TextDecoderStream()).getReader();
      // `pids` fills as they come, so that a run that fails half way kills what it started.
      const seen = (text: string) => {
        pids.splice(0, pids.length, ...[...text.matchAll(/child (\d+)/g)].map((m) => +m[1]));
        return pids.length >= 5;
      };
      const text = await readUntil(reader, seen, 20_000).catch(async (error) => {
        parent.kill("SIGKILL");
        await parent.status;
        await reader.cancel();
        throw error;
      });
      assert.equal(pids.length, 5, text);
      // Let each pool child start its watchdog after its first result.
      await new Promise((resolve) => setTimeout(resolve, 300));
      parent.kill(signal);
      await parent.status;
      await reader.cancel();
      await waitUntil(() => !pids.some(alive), 10_000);
      assert.deepEqual([...Deno.readDirSync(tmp)], []);
    } finally {
      // A failed run must not leave spinning children to slow the tests after it.
      for (const pid of pids) if (alive(pid)) Deno.kill(pid, "SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  });
}

// ---- a hostile task writes to fd 1 itself ----------------------------------

const MAGIC = [0xff, 0xc0, 0xfe, 0xc1];

/** A frame as the channel writes it: magic, length, format, body. */
function frame(format: string, body: Uint8Array | string, length?: number): number[] {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const size = length ?? bytes.byteLength + 1;
  return [
    ...MAGIC,
    size & 0xff,
    (size >> 8) & 0xff,
    (size >> 16) & 0xff,
    size >>> 24,
    format.charCodeAt(0),
    ...bytes,
  ];
}

async function assertEndedFor(pool: ProcessPool, bytes: number[], cause: RegExp): Promise<void> {
  const error = await failure(pool.submit(hostile.rawBytes, bytes), 15_000);
  assert.equal(error.name, "WorkerCrashedError", error.stack);
  assert.match(String(error.cause?.message), cause);
  assert.equal(await within(pool.submit((x: number) => x * 2, 21)), 42);
}

Deno.test("a forged result written to fd 1 for a task the child was not given ends that child", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1, permissions: "none" });
  const forged = {
    type: "done",
    slots: [777],
    statuses: [0],
    values: ["forged"],
    modules: {},
    busyMs: 0,
  };
  await assertEndedFor(pool, frame("J", JSON.stringify(forged)), /task it was not given/);
});

Deno.test("garbage in a frame written to fd 1 ends that child", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1, permissions: "none" });
  await assertEndedFor(pool, frame("J", "}{ not json"), /does not decode/);
  await assertEndedFor(pool, frame("Q", "x"), /does not decode \(format 81\)/);
});

Deno.test("an oversized frame written to fd 1 ends that child before its body is read", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1, permissions: "none" });
  await assertEndedFor(pool, frame("J", "", 0x7fff_fff0), /a frame of 2147483632 bytes/);
});

/** A pool whose disposal fails the test after `ms` instead of waiting for ever. */
function boundedPool(options: ConstructorParameters<typeof ProcessPool>[0], ms = 20_000) {
  const pool = new ProcessPool(options);
  return Object.assign(pool, {
    [Symbol.asyncDispose]: () => within(pool.shutdown({ cancelPending: true }), ms),
  });
}

Deno.test("a frame begun on fd 1 and never finished ends that child, not a hang", async () => {
  await using pool = boundedPool({ maxWorkers: 1, permissions: "none" });
  await assertEndedFor(pool, frame("J", "{", 10_000_000), /the start of a frame and not the rest/);
});

Deno.test("a synchronous task that ends its child loses none of the results before it", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1 });
  await within(
    Promise.all(Array.from({ length: 100 }, (_, i) => pool.submit(pipes.addOrExit, i, false))),
  );
  for (let round = 0; round < 3; round++) {
    const outcomes = await within(
      Promise.allSettled(
        Array.from({ length: 200 }, (_, i) => pool.submit(pipes.addOrExit, i, i === 150)),
      ),
      30_000,
    );
    for (const [i, outcome] of outcomes.entries()) {
      if (i === 150) {
        assert.equal((outcome as PromiseRejectedResult).reason?.name, "WorkerCrashedError");
      } else {
        assert.deepEqual(outcome, { status: "fulfilled", value: i + 1 }, `task ${i}`);
      }
    }
  }
});

Deno.test("a task held by a busy child is not taken back while the child lives: each runs once", async () => {
  await using pool = new ProcessPool({ maxWorkers: 2, minWorkers: 2 });
  await within(Promise.all(Array.from({ length: 20 }, (_, i) => pool.submit(work.add, i, 1))));
  const runs = new Value("int32", 0);
  const event = new Event();
  const first = pool.submit(pipes.pidAfter, event);
  const count = 8;
  const counted = Array.from(
    { length: count },
    (_, i) => pool.submit(pipes.counted, runs, i, "none"),
  );
  // The other child runs dry at once while the busy one holds some of the tasks.
  await new Promise((resolve) => setTimeout(resolve, 500));
  event.set();
  await within(Promise.all([first, ...counted]));
  // A task taken back from the live child would also run there once it is free.
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(runs.loadSync(), count);
});

Deno.test("typed arrays from a child stay intact while later frames arrive", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1 });
  const first = await within(pool.submit(pipes.bytes, 7, 1000));
  for (let i = 0; i < 5; i++) await within(pool.submit(pipes.bytes, 9, 1000));
  assert.deepEqual([...new Set(first)], [7]);
  // And in the child: an argument read after a broker answer has come through its reader.
  const queue = new Queue<string>();
  queue.putSync("y".repeat(5000));
  assert.equal(
    await within(pool.submit(pipes.sumAfterGet, new Uint8Array(100).fill(1), queue)),
    "got 5000, sum=100",
  );
});

Deno.test("a held task cancelled while its child runs synchronous tasks never holds up the rest", async () => {
  await using pool = boundedPool({ maxWorkers: 1 });
  await within(Promise.all(Array.from({ length: 50 }, () => pool.submit(pipes.pid))));
  const short = Array.from({ length: 5 }, () => pool.submit(pipes.spin, 200));
  // Cancelled before it starts; the child, busy, reads the cancel only after it began it.
  const endless = pool.submit(pipes.spin, 3_600_000);
  const after = pool.submit(pipes.pid);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(endless.cancel(), true);
  assert.equal((await failure(endless)).name, "CancelledError");
  await within(Promise.all(short));
  assert.equal(typeof await within(after), "number");
});

Deno.test("an honest task whose binary output ends in a byte of the marker is not ended", async () => {
  await using pool = boundedPool({ maxWorkers: 1 });
  // 0xFF starts the frame marker; the task then works on for longer than a stall may last.
  assert.equal(
    await within(pool.submit(pipes.bytesThenWait, [0x41, 0xff], 6_000), 20_000),
    "done",
  );
  assert.equal(pool.stats.crashedWorkers, 0);
});

Deno.test("a child's output does not stop the parent while the parent's stdout is not read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const program = `${dir}/program.ts`;
    await Deno.writeTextFile(
      program,
      `
      import { ProcessPool, tasks } from "${new URL("../mod.ts", import.meta.url).href}";
      const pipes = tasks(new URL("${new URL("./_pipe_tasks.ts", import.meta.url).href}"));
      const pool = new ProcessPool({ maxWorkers: 2, minWorkers: 2 });
      await Promise.all([pool.submit(pipes.pid), pool.submit(pipes.pid)]);
      const printing = pool.submit(pipes.printMuch, 2); // far more than a pipe holds
      for (let i = 0; i < 20; i++) await pool.submit(pipes.pid);
      console.error("the other child answered while the output waited");
      await printing;
      await pool.shutdown();
    `,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-config", program],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Nobody reads the program's stdout until it says the other child kept answering.
    const errors = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    const text = await readUntil(
      errors,
      (text) => text.includes("answered while the output waited"),
      15_000,
    ).catch((error) => {
      child.kill("SIGKILL");
      throw error;
    });
    assert.match(text, /answered while the output waited/);
    await child.stdout.pipeTo(new WritableStream());
    await errors.cancel();
    assert.equal((await child.status).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("shutdown ends even while a grandchild keeps writing to the child's stdout", async () => {
  const dir = await Deno.makeTempDir();
  let grandchild = 0;
  try {
    const pool = new ProcessPool({ maxWorkers: 1 });
    grandchild = await within(pool.submit(pipes.chattyGrandchild, `${dir}/pid`));
    await within(pool.shutdown(), 10_000);
  } finally {
    if (grandchild > 0) Deno.kill(grandchild, "SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("shutdown({ cancelPending }) cancels what a retiring child holds and has not started", async () => {
  await using pool = boundedPool({ maxWorkers: 1 });
  await within(Promise.all(Array.from({ length: 40 }, () => pool.submit(pipes.pid))));
  const cancelled = pool.submit(pipes.untilCancelled);
  const behind = [pool.submit(pipes.spin, 300), pool.submit(pipes.spin, 300)];
  await waitUntil(() => pool.stats.runningTasks === 1);
  // It answers the cancel in time: its child retires, still holding the two behind it.
  cancelled.cancel();
  await new Promise((resolve) => setTimeout(resolve, 20));
  await within(pool.shutdown({ cancelPending: true }));
  const outcomes = await Promise.allSettled(behind);
  assert.equal(outcomes[1].status, "rejected");
  assert.equal((outcomes[1] as PromiseRejectedResult).reason.name, "CancelledError");
});

Deno.test("Process.terminate() kills its child at once, even a target that would answer the cancel", async () => {
  const child = new Process({ target: pipes.untilCancelled }).start();
  await waitUntil(() => child.pid !== null);
  await new Promise((resolve) => setTimeout(resolve, 300));
  await within(child.terminate());
  assert.equal(child.signal, "SIGKILL");
  assert.equal((await failure(child.join())).name, "CancelledError");
});
