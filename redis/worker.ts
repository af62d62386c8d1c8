/**
 * A Redis pool worker from a shell:
 *
 *     deno run -A jsr:@parallel/core/redis/worker --url redis://127.0.0.1:6379 --name render \
 *       --processes --workers 8 --modules file:///srv/work/ --modules https://example.com/work/
 *
 * Flags: `--url`, `--name` (required), `--modules PREFIX` (repeatable: the task modules it may
 * import), `--workers N` (local workers, default: the cores), `--processes` (a ProcessPool; default
 * a ThreadPool), `--allow-inline` (run inline functions). It serves until SIGINT or SIGTERM, then
 * finishes the tasks it holds.
 *
 * @module
 */

import { ProcessPool, ThreadPool } from "../mod.ts";
import { serveRedisPool } from "./serve.ts";

function parse(args: string[]) {
  const options = {
    url: "",
    name: "",
    modules: [] as string[],
    workers: navigator.hardwareConcurrency ?? 1,
    processes: false,
    allowInline: false,
  };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const value = () => {
      const next = args[++i];
      if (next === undefined) throw new Error(`${flag} needs a value`);
      return next;
    };
    if (flag === "--url") options.url = value();
    else if (flag === "--name") options.name = value();
    else if (flag === "--modules") options.modules.push(value());
    else if (flag === "--workers") options.workers = Number(value());
    else if (flag === "--processes") options.processes = true;
    else if (flag === "--allow-inline") options.allowInline = true;
    else throw new Error(`unknown flag ${flag}`);
  }
  if (!options.url || !options.name) throw new Error("--url and --name are required");
  if (!Number.isInteger(options.workers) || options.workers < 1) {
    throw new Error(`--workers must be a whole number >= 1: current value is ${options.workers}`);
  }
  return options;
}

if (import.meta.main) {
  let options;
  try {
    options = parse(Deno.args);
  } catch (error) {
    console.error(`redis/worker.ts: ${(error as Error).message}`);
    Deno.exit(2);
  }
  const pool = options.processes
    ? new ProcessPool({ maxWorkers: options.workers })
    : new ThreadPool({ maxWorkers: options.workers });
  const worker = await serveRedisPool({
    url: options.url,
    name: options.name,
    pool,
    modules: options.modules,
    allowInline: options.allowInline,
    concurrency: options.workers,
  });
  console.log(`serving ${options.name} at ${options.url} as worker ${worker.id}`);
  const stop = () => void worker.close().then(() => Deno.exit(0));
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}
