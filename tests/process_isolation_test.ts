// What a child process may do, and what it may read.
import assert from "node:assert/strict";
import { ProcessPool } from "../mod.ts";
import { failure, runProgram, within, work } from "./_helpers.ts";

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
  assert.match(stdout, /child processes need --allow-run \(to start `deno`\); run with it or -A/);
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
