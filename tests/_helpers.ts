// Deadlines for every wait in the tests.
import { tasks } from "../mod.ts";

export const work = tasks<typeof import("./_tasks.ts")>(new URL("./_tasks.ts", import.meta.url));

/** Resolves with `promise`, or rejects if it takes longer than `ms`. */
export async function within<T>(promise: PromiseLike<T>, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`deadline of ${ms} ms passed`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until `done()` returns true, checking every 10 ms, for at most `ms`. */
export async function waitUntil(done: () => boolean, ms = 10_000): Promise<void> {
  await within(
    (async () => {
      while (!done()) await new Promise((resolve) => setTimeout(resolve, 10));
    })(),
    ms,
  );
}

/** Reads `reader` until the text read so far satisfies `done`, for at most `ms`; the text. */
export async function readUntil(
  reader: ReadableStreamDefaultReader<string>,
  done: (text: string) => boolean,
  ms = 10_000,
): Promise<string> {
  let text = "";
  await within(
    (async () => {
      while (!done(text)) {
        const { value, done: ended } = await reader.read();
        if (ended) break;
        text += value;
      }
    })(),
    ms,
  );
  return text;
}

/** Waits until `flags[index]` is non-zero, for at most `ms`. */
export async function flagSet(flags: Int32Array, index: number, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Atomics.load(flags, index) === 0) {
    if (Date.now() > end) throw new Error(`flag ${index} not set within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export function sharedFlags(n = 4): Int32Array {
  return new Int32Array(new SharedArrayBuffer(n * 4));
}

/** Runs a Deno program's source in a subprocess; fails if it runs past `ms`. */
export async function runProgram(
  source: string,
  ms = 20_000,
  permissions: string[] = ["-A"],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/program.ts`;
  await Deno.writeTextFile(
    file,
    source
      .replaceAll("@parallel/core/redis", new URL("../redis/mod.ts", import.meta.url).href)
      .replaceAll("@parallel/core", new URL("../mod.ts", import.meta.url).href),
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, "--no-config", file],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  try {
    const output = await child.output();
    return {
      code: output.signal === "SIGKILL" ? -1 : output.code,
      stdout: new TextDecoder().decode(output.stdout),
      stderr: new TextDecoder().decode(output.stderr),
    };
  } finally {
    clearTimeout(timer);
    await Deno.remove(dir, { recursive: true });
  }
}

/** The error `task` fails with; throws if it succeeds. Waits at most `ms`. */
export function failure(task: PromiseLike<unknown>, ms = 10_000): Promise<any> {
  return within(
    Promise.resolve(task).then(
      (value) => {
        throw new Error(`expected a failure, got ${String(value)}`);
      },
      (error) => error,
    ),
    ms,
  );
}

/** Whether process `pid` is still running (a zombie counts as ended). */
export function alive(pid: number): boolean {
  try {
    return !/State:\s+Z/.test(Deno.readTextFileSync(`/proc/${pid}/status`));
  } catch {
    return false;
  }
}
