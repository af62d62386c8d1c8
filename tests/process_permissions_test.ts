// A child process never gets read access to a folder its parent cannot read
// (processes/_permissions.ts), including the folders the library adds on its own: the
// working directory (the project) and the main module's directory. Each test runs a small
// program with narrow grants and asks a child, and the program itself, to read a file in
// each folder.
import assert from "node:assert/strict";

const modUrl = new URL("../mod.ts", import.meta.url).href;
const packageFile = decodeURIComponent(new URL("../README.md", import.meta.url).pathname);

/** The folders of one run: T (the program's temporary directory), P (its working
 * directory, the project) and M (its main module's directory), each with a `secret.txt`. */
interface Layout {
  base: string;
  tmp: string;
  project: string;
  main: string;
}

async function layout(): Promise<Layout> {
  const base = await Deno.makeTempDir({ prefix: "parallel-permissions-" });
  const dirs = { base, tmp: `${base}/tmp`, project: `${base}/project`, main: `${base}/main` };
  for (const dir of [dirs.tmp, dirs.project, dirs.main]) {
    await Deno.mkdir(dir);
    await Deno.writeTextFile(`${dir}/secret.txt`, "secret");
  }
  return dirs;
}

const PROGRAM = `
import { ProcessPool } from "${modUrl}";
const probe = (path: string) => {
  try {
    Deno.readTextFileSync(path);
    return "read";
  } catch (error) {
    return (error as Error).name;
  }
};
const paths: string[] = JSON.parse(Deno.args[0]);
const pool = new ProcessPool({ maxWorkers: 1 }); // permissions: "inherit"
const child: Record<string, string> = {};
for (const path of paths) child[path] = await pool.submit(probe, path);
await pool.shutdown();
const parent = Object.fromEntries(paths.map((path) => [path, probe(path)]));
console.log(JSON.stringify({ child, parent }));
`;

/**
 * Runs the program from `dirs.main` in `dirs.project`, with read access to `dirs.tmp` and
 * `reads`, and what a ProcessPool needs besides; returns what the child and the program could
 * read of `paths`.
 */
async function probeReads(
  dirs: Layout,
  reads: string[],
  paths: string[],
): Promise<{ child: Record<string, string>; parent: Record<string, string> }> {
  const program = `${dirs.main}/program.ts`;
  await Deno.writeTextFile(program, PROGRAM);
  const command = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-config",
      "--allow-run",
      "--allow-net=127.0.0.1",
      `--allow-write=${dirs.tmp}`,
      `--allow-read=${[dirs.tmp, ...reads].join(",")}`,
      "--allow-env=TMPDIR",
      program,
      JSON.stringify(paths),
    ],
    cwd: dirs.project,
    env: { TMPDIR: dirs.tmp },
    stdout: "piped",
    stderr: "piped",
  });
  const child = command.spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    const output = await child.output();
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, `the program failed (signal ${output.signal}): ${stderr}`);
    return JSON.parse(stdout.trim().split("\n").at(-1)!);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("a child does not get read access to its parent's working directory when the parent cannot read it", async () => {
  const dirs = await layout();
  try {
    const project = `${dirs.project}/secret.txt`;
    const main = `${dirs.main}/secret.txt`;
    // The program may read its main module's directory, not its working directory.
    const { child, parent } = await probeReads(dirs, [dirs.main], [project, main]);
    assert.deepEqual(parent, { [project]: "NotCapable", [main]: "read" });
    assert.equal(child[project], "NotCapable", "the child read the parent's working directory");
    // The library adds the main module's directory, which the parent may read.
    assert.equal(child[main], "read");
  } finally {
    await Deno.remove(dirs.base, { recursive: true });
  }
});

Deno.test("a child does not get read access to its parent's main-module directory when the parent cannot read it", async () => {
  const dirs = await layout();
  try {
    const project = `${dirs.project}/secret.txt`;
    const main = `${dirs.main}/secret.txt`;
    // The program may read its working directory, not its main module's directory.
    const { child, parent } = await probeReads(dirs, [dirs.project], [project, main]);
    assert.deepEqual(parent, { [project]: "read", [main]: "NotCapable" });
    assert.equal(child[main], "NotCapable", "the child read the main module's directory");
    // The library adds the working directory, which the parent may read.
    assert.equal(child[project], "read");
  } finally {
    await Deno.remove(dirs.base, { recursive: true });
  }
});

Deno.test({
  // Found by this test: every child used to get --allow-read of this package's folder.
  name: "a child does not get read access to this package's folder when the parent cannot read it",
  async fn() {
    const dirs = await layout();
    try {
      const { child, parent } = await probeReads(dirs, [], [packageFile]);
      assert.equal(parent[packageFile], "NotCapable");
      assert.equal(child[packageFile], "NotCapable", "the child read the package's folder");
    } finally {
      await Deno.remove(dirs.base, { recursive: true });
    }
  },
});
