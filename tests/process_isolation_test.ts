// What a child process may do, what happens when its parent dies, and who may talk to it.
import assert from "node:assert/strict";
import { FrameChannel } from "../processes/_channel.ts";
import { ProcessPool } from "../mod.ts";
import { alive, failure, runProgram, within, work } from "./_helpers.ts";

Deno.test("a task's console.log reaches the parent's stdout unchanged", async () => {
  const { code, stdout, stderr } = await runProgram(`
    import { ProcessPool } from "@parallel/core";
    await using pool = new ProcessPool({ maxWorkers: 1 });
    await pool.submit((text: string) => console.log(text), "hello from a child: ünïcode ✓");
  `);
  assert.equal(code, 0, stderr);
  assert.equal(stdout, "hello from a child: ünïcode ✓\n");
});

Deno.test("permissions: 'none' keeps a child from the environment; inherit passes it", async () => {
  await using closed = new ProcessPool({ maxWorkers: 1, permissions: "none" });
  const error = await failure(closed.submit(work.readEnv, "HOME"));
  assert.equal(error.name, "NotCapable");
  await using open = new ProcessPool({ maxWorkers: 1 });
  assert.equal(await within(open.submit(work.readEnv, "HOME")), Deno.env.get("HOME"));
  await using listed = new ProcessPool({ maxWorkers: 1, permissions: { env: ["HOME"] } });
  assert.equal(await within(listed.submit(work.readEnv, "HOME")), Deno.env.get("HOME"));
});

Deno.test("a parent without the grants children need is told which flags to add", async () => {
  const { code, stdout, stderr } = await runProgram(
    `
    import { ProcessPool } from "@parallel/core";
    try {
      new ProcessPool();
    } catch (error) {
      console.log((error as Error).message);
    }
  `,
    20_000,
    ["--allow-read"],
  );
  assert.equal(code, 0, stderr);
  assert.match(stdout, /child processes need --allow-run --allow-net=127.0.0.1 --allow-write=/);
});

Deno.test("a child never gets a permission its parent lacks", async () => {
  const { code, stdout, stderr } = await runProgram(
    `
    import { ProcessPool } from "@parallel/core";
    try {
      new ProcessPool({ permissions: { net: true } });
    } catch (error) {
      console.log((error as Error).message);
    }
    await using pool = new ProcessPool({ maxWorkers: 1 });
    console.log(await pool.submit(() => Deno.permissions.querySync({ name: "net" }).state));
  `,
    20_000,
    ["--allow-read", "--allow-write", "--allow-run", "--allow-env", "--allow-net=127.0.0.1"],
  );
  assert.equal(code, 0, stderr);
  const [message, state] = stdout.trim().split("\n");
  assert.match(message, /permissions.net is true, but this program was not granted --allow-net/);
  assert.equal(state, "prompt", "the child must not have global net access");
});

Deno.test("children exit when their parent is killed with SIGKILL, even in a synchronous loop", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const program = `${dir}/parent.ts`;
    await Deno.writeTextFile(
      program,
      `
      import { ProcessPool } from "${new URL("../mod.ts", import.meta.url).href}";
      const pool = new ProcessPool({ maxWorkers: 2 });
      const report = (pid: number) => console.log("child", pid);
      pool.submit(() => { console.log("child", Deno.pid); const end = Date.now() + 60_000; while (Date.now() < end) {} });
      pool.submit(() => { console.log("child", Deno.pid); return new Promise(() => {}); });
      void report;
    `,
    );
    const parent = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-config", program],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = parent.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const pids: number[] = [];
    await within(
      (async () => {
        while (pids.length < 2) {
          const { value, done } = await reader.read();
          if (done) break;
          text += value;
          pids.splice(0, pids.length, ...[...text.matchAll(/child (\d+)/g)].map((m) => +m[1]));
        }
      })(),
    );
    assert.equal(pids.length, 2, text);
    parent.kill("SIGKILL");
    await parent.status;
    await reader.cancel();
    await within(
      (async () => {
        while (pids.some(alive)) await new Promise((resolve) => setTimeout(resolve, 50));
      })(),
      5_000,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a connection without the token is refused and nothing runs", async () => {
  await using pool = new ProcessPool({ maxWorkers: 1, minWorkers: 1 });
  const { pid } = await within(pool.submit(work.whoAmIProcess));
  // The child was told the parent's port on its command line.
  const args = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
  const port = Number(args[args.findIndex((arg) => arg.endsWith("_child.ts")) + 1]);
  assert.ok(port > 0, args.join(" "));
  const flag = `${await Deno.makeTempDir()}/ran`;
  {
    const connection = await Deno.connect({ hostname: "127.0.0.1", port });
    const channel = new FrameChannel<unknown, unknown>(connection);
    channel.send({ type: "hello", token: "not the token" });
    channel.send({
      type: "run",
      define: [[1, {
        source: `() => Deno.writeTextFileSync(${JSON.stringify(flag)}, "x")`,
        name: "",
      }]],
      ids: [1],
      slots: [0],
      fns: [1],
      arities: [0],
      args: [],
      extras: {},
    });
    const answers: unknown[] = [];
    await within(channel.listen((message) => answers.push(message)));
    assert.deepEqual(answers, [], "the parent answered an unproven connection");
    channel.close();
  }
  await assert.rejects(Deno.stat(flag), Deno.errors.NotFound);
  await Deno.remove(flag.replace(/\/ran$/, ""), { recursive: true });
  assert.equal(await within(pool.submit(work.add, 2, 2)), 4);
});

Deno.test("a program that imports the package by URL runs threads and processes", async () => {
  const root = new URL("../", import.meta.url);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const path = new URL(request.url).pathname;
    try {
      const body = await Deno.readFile(new URL(`.${path}`, root));
      return new Response(body, { headers: { "content-type": "application/typescript" } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const { code, stdout, stderr } = await runProgram(`
      import { ProcessPool, ThreadPool } from "${base}/mod.ts";
      await using threads = new ThreadPool({ maxWorkers: 1 });
      await using processes = new ProcessPool({ maxWorkers: 1 });
      console.log(await threads.submit((x: number) => x + 1, 1), await processes.submit((x: number) => x + 2, 1));
    `);
    assert.equal(code, 0, stderr);
    assert.equal(stdout.trim(), "2 3");
  } finally {
    await server.shutdown();
  }
});

Deno.test("a child resolves bare imports with its parent's deno.json", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/lib`);
    await Deno.writeTextFile(
      `${dir}/deno.json`,
      JSON.stringify({ imports: { "#lib/": "./lib/" } }),
    );
    await Deno.writeTextFile(
      `${dir}/lib/shout.ts`,
      `export const shout = (s: string) => s.toUpperCase() + "!";`,
    );
    await Deno.writeTextFile(
      `${dir}/work.ts`,
      `import { shout } from "#lib/shout.ts";\nexport function greet(name: string) { return shout("hello " + name); }\n`,
    );
    await Deno.writeTextFile(
      `${dir}/main.ts`,
      `
      import { ProcessPool, tasks } from "${new URL("../mod.ts", import.meta.url).href}";
      const work = tasks<typeof import("./work.ts")>(new URL("./work.ts", import.meta.url));
      await using pool = new ProcessPool({ maxWorkers: 1, permissions: { env: true } });
      console.log(await pool.submit(work.greet, "deno"));
    `,
    );
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-run",
        "--allow-env",
        "--allow-net=127.0.0.1",
        "main.ts",
      ],
      cwd: dir,
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    assert.equal(new TextDecoder().decode(output.stdout).trim(), "HELLO DENO!");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a child does not get what its parent was denied (-A --deny-read)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/secret.txt`, "top secret");
    const { code, stdout, stderr } = await runProgram(
      `
      import { ProcessPool } from "@parallel/core";
      await using pool = new ProcessPool({ maxWorkers: 1 });
      const read = (path: string) => Deno.readTextFileSync(path);
      console.log(await pool.submit(read, "${dir}/secret.txt").catch((e) => e.name));
    `,
      20_000,
      ["-A", `--deny-read=${dir}/secret.txt`],
    );
    assert.equal(code, 0, stderr);
    assert.equal(stdout.trim(), "NotCapable");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
