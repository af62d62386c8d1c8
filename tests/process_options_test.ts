// How a child starts: env, clearEnv, cwd, maxHeapMB (permissions: process_permissions_test.ts).
import assert from "node:assert/strict";
import { Process, ProcessPool, WorkerCrashedError } from "../mod.ts";
import { failure, runProgram, within, work } from "./_helpers.ts";

Deno.test("env adds to the inherited environment; clearEnv replaces it", async () => {
  Deno.env.set("PARALLEL_CORE_PARENT", "inherited");
  try {
    {
      await using pool = new ProcessPool({ maxWorkers: 1, env: { PARALLEL_CORE_TEST: "added" } });
      assert.equal(await within(pool.submit(work.readEnv, "PARALLEL_CORE_TEST")), "added");
      assert.equal(await within(pool.submit(work.readEnv, "PARALLEL_CORE_PARENT")), "inherited");
    }
    await using pool = new ProcessPool({
      maxWorkers: 1,
      env: { PARALLEL_CORE_TEST: "alone" },
      clearEnv: true,
    });
    assert.equal(await within(pool.submit(work.readEnv, "PARALLEL_CORE_TEST")), "alone");
    assert.equal(await within(pool.submit(work.readEnv, "PARALLEL_CORE_PARENT")), undefined);
  } finally {
    Deno.env.delete("PARALLEL_CORE_PARENT");
  }
});

Deno.test("env never widens the env permission", async () => {
  const child = new Process({
    target: work.readEnv,
    args: ["PARALLEL_CORE_TEST"],
    env: { PARALLEL_CORE_TEST: "secret" },
    permissions: { env: false },
  }).start();
  const error = await failure(child.join());
  assert.equal(error.name, "NotCapable");
  assert.match(error.message, /env access to "PARALLEL_CORE_TEST"/);
});

Deno.test("cwd sets the child's working directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const child = new Process({ target: work.workingDirectory, cwd: dir }).start();
    assert.equal(await within(child.join()), await Deno.realPath(dir));
  } finally {
    await Deno.remove(dir);
  }
});

Deno.test("maxHeapMB: a child over its heap limit dies alone, saying so; the pool goes on", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1, maxHeapMB: 64 });
  const error = await failure(pool.submit(work.exhaustHeap), 30_000);
  assert.ok(error instanceof WorkerCrashedError, `${error}`);
  assert.equal(error.signal, "SIGTRAP");
  assert.match(String(error.cause), /ran out of memory \(maxHeapMB: 64\)/);
  assert.equal(await within(pool.submit(work.add, 1, 2)), 3);
});

Deno.test("bad child options name the option and the value", () => {
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ env: "A=1" }, "TypeError", /'env' must be an object of strings: current value is "A=1"/],
    [{ env: { A: 1 } }, "TypeError", /'env' must map names to strings: "A" is 1/],
    [{ clearEnv: "yes" }, "TypeError", /'clearEnv' must be a boolean: current value is "yes"/],
    [
      { cwd: "/no/such/dir" },
      "TypeError",
      /'cwd' must be an existing directory: .*"\/no\/such\/dir"/,
    ],
    [{ maxHeapMB: 0 }, "RangeError", /'maxHeapMB'/],
    [{ maxHeap: 64 }, "TypeError", /unknown option 'maxHeap'/],
  ];
  for (const [options, name, message] of cases) {
    assert.throws(() => new ProcessPool(options), { name, message }, JSON.stringify(options));
    assert.throws(
      () => new Process({ target: work.add, ...options }),
      { name, message },
      JSON.stringify(options),
    );
  }
});

Deno.test("cwd: a relative permission path means the parent's directory, not the child's", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/mine`);
    await Deno.mkdir(`${root}/other`);
    await Deno.writeTextFile(`${root}/other/secret.txt`, "secret");
    // The program may read only its own directory ("mine"), and asks for "." for a child in "other".
    const program = `
      import { Process } from "@parallel/core";
      Deno.chdir(${JSON.stringify(`${root}/mine`)});
      const child = new Process({
        target: () => Deno.readTextFileSync("secret.txt"),
        cwd: ${JSON.stringify(`${root}/other`)},
        permissions: { read: ["."] },
      }).start();
      console.log(await child.join().then(() => "read it", (error) => error.name));
    `;
    const { code, stdout, stderr } = await runProgram(program, 20_000, [
      `--allow-read=${root}/mine,${Deno.execPath()}`,
      "--allow-run",
    ]);
    assert.equal(code, 0, stderr);
    assert.equal(stdout.trim(), "NotCapable", "the child read a file its parent may not");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
