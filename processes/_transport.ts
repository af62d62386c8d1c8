/**
 * The process transport: a {@linkcode WorkerHandle} over a `deno run` child,
 * talking over the child's own pipes (`_channel.ts`): frames to its stdin,
 * frames and the child's own output from its stdout; its stderr is the
 * parent's. Nothing listens on a socket and nothing is written to disk.
 * Importing this module registers it with the scheduler.
 *
 * A child writes a `started` message before each job and each outcome
 * before the next job begins, synchronously, so once a dead child's stdout
 * has been read to its end the parent knows which jobs it started. Until
 * then a job cannot be taken back for another worker. A job the child holds
 * and has not said it started can still be cancelled: the child skips it
 * (if it had started it meanwhile, the pool stops it as a running job).
 * Cancelling a running job tells the child and kills it unless the job
 * answers within {@linkcode CANCEL_GRACE_MS}.
 *
 * @module
 */

import * as v8 from "node:v8";
import { isAbsolute, resolve } from "node:path";
import { type ExitInfo, registerTransport, type WorkerHandle } from "../internal/pool.ts";
import type { FromWorker, ToWorker, WorkerInit } from "../internal/protocol.ts";
import {
  type AbortMessage,
  BrokerSession,
  type CallMessage,
  ChildViolation,
  mappedChildContext,
  parentContext,
  type ReplyMessage,
} from "../internal/broker.ts";
import { encodeFrame, FrameReader, FrameSender, MAX_FRAME, provideV8 } from "./_channel.ts";
import {
  childFlags,
  type Permissions,
  type ResolvedPermissions,
  resolvePermissions,
} from "./_permissions.ts";
import { show, wholeNumber } from "../internal/options.ts";
import { settledWithin } from "../internal/wait.ts";
import { memoryKind } from "../internal/memory.ts";
import { recoverFromEndOf } from "../sync/_holds.ts";
import { type CheckedDone, ChildLedger } from "./_untrusted.ts";

provideV8(v8);

const childUrl = new URL("./_child.ts", import.meta.url);

/** How long an idle child may take to exit once its stdin closes. */
const GRACEFUL_EXIT_MS = 2_000;

/**
 * A frame whose header has arrived is stalled when the checks made every
 * {@linkcode STALL_CHECK_MS} see no new byte this many times in a row (5 s).
 * A child writes a frame with one synchronous call, so it never stops
 * halfway; a parent whose own loop is busy makes fewer checks, so that
 * never counts against the child.
 */
const STALL_CHECKS = 5;
const STALL_CHECK_MS = 1_000;

/**
 * How long a dead child's stdout may stay open with nothing arriving (a
 * grandchild holding it) before it is let go.
 */
const OUTPUT_GRACE_MS = 1_000;

/** The longest a dead child's stdout is read, however much keeps coming. */
const OUTPUT_MAX_MS = 5_000;

/**
 * How long a running job being cancelled has to answer before its child is
 * killed. The parent's view of what a child runs is as old as the last frame
 * read: the job may have finished, and the child gone on to others.
 */
const CANCEL_GRACE_MS = 100;

/** Set on a `Process`'s options: its child starts its watchdog before its first job. */
export const GUARD_AT_ONCE: unique symbol = Symbol("guard at once");

/** The configuration `spawnProcess` receives. */
interface ProcessConfig {
  permissions: ResolvedPermissions;
  guardAtOnce: boolean;
  env?: Record<string, string>;
  clearEnv: boolean;
  cwd?: string;
  maxHeapMB?: number;
}

/** What `Process` and `ProcessPool` take for their children, besides the pool options. */
export interface ChildOptions {
  /** The child's Deno permissions. Default `"inherit"`: the parent's global grants. */
  permissions?: Permissions;
  /**
   * Environment variables added to the inherited ones (with `clearEnv`, the
   * only ones). They never widen the `env` permission: a child reads them
   * only if its permissions let it.
   */
  env?: Record<string, string>;
  /**
   * Start the child with only `env` (and `HOME`, `DENO_DIR` and
   * `XDG_CACHE_HOME` when set, which `deno` needs to find its cache).
   * Default `false`.
   */
  clearEnv?: boolean;
  /** The child's working directory. Default: this program's. */
  cwd?: string;
  /**
   * The child's V8 heap limit in MiB (`--max-old-space-size`). A child that
   * exceeds it dies alone; its task fails with `WorkerCrashedError` saying
   * it ran out of memory. Default: V8's own limit.
   */
  maxHeapMB?: number;
}

/** The option names of {@linkcode ChildOptions}. */
export const CHILD_OPTIONS: readonly string[] = [
  "permissions",
  "env",
  "clearEnv",
  "cwd",
  "maxHeapMB",
];

/** Checks the child options; throws a `TypeError` or `RangeError` naming the option and value. */
export function checkChildOptions(
  options: ChildOptions,
  where: string,
): Omit<ProcessConfig, "guardAtOnce"> {
  const { env, clearEnv, cwd, maxHeapMB } = options;
  if (env !== undefined) {
    if (typeof env !== "object" || env === null || Array.isArray(env)) {
      throw new TypeError(
        `${where}: 'env' must be an object of strings: current value is ${show(env)}`,
      );
    }
    for (const [name, value] of Object.entries(env)) {
      if (typeof value !== "string" || name === "" || name.includes("=") || name.includes("\0")) {
        throw new TypeError(
          `${where}: 'env' must map names to strings: ${show(name)} is ${show(value)}`,
        );
      }
    }
  }
  if (clearEnv !== undefined && typeof clearEnv !== "boolean") {
    throw new TypeError(
      `${where}: 'clearEnv' must be a boolean: current value is ${show(clearEnv)}`,
    );
  }
  if (cwd !== undefined) {
    if (typeof cwd !== "string" || cwd === "") {
      throw new TypeError(
        `${where}: 'cwd' must be a directory path: current value is ${show(cwd)}`,
      );
    }
    let isDirectory = true;
    try {
      isDirectory = Deno.statSync(cwd).isDirectory;
    } catch (error) {
      // Without read access the child's start says what is wrong.
      if (error instanceof Deno.errors.NotFound) isDirectory = false;
    }
    if (!isDirectory) {
      throw new TypeError(
        `${where}: 'cwd' must be an existing directory: current value is ${show(cwd)}`,
      );
    }
  }
  const permissions = resolvePermissions(options.permissions, where);
  return {
    permissions: cwd === undefined ? permissions : anchorPaths(permissions, where),
    env: env === undefined ? undefined : { ...env },
    clearEnv: clearEnv ?? false,
    cwd,
    maxHeapMB: maxHeapMB === undefined ? undefined : wholeNumber(maxHeapMB, "maxHeapMB", 16, where),
  };
}

/**
 * The permissions of a child with its own `cwd`: relative paths were checked against
 * the parent's working directory, so they go to the child as absolute paths (else
 * `read: ["."]` would grant the child's directory, which the parent may not read).
 */
function anchorPaths(permissions: ResolvedPermissions, where: string): ResolvedPermissions {
  const anchored = { ...permissions };
  for (const name of ["read", "write", "ffi", "run"] as const) {
    const items = permissions[name];
    if (!Array.isArray(items)) continue;
    anchored[name] = items.map((item) => {
      // A `run` item without a slash is a program looked up in PATH, not a path.
      if (isAbsolute(item) || (name === "run" && !item.includes("/"))) return item;
      let base: string;
      try {
        base = Deno.cwd();
      } catch {
        throw new TypeError(
          `${where}: permissions.${name} lists the relative path ${
            JSON.stringify(item)
          } and 'cwd' is set: give it as an absolute path`,
        );
      }
      return resolve(base, item);
    });
  }
  return anchored;
}

/** V8 stops a process that reaches its heap limit with SIGTRAP: says so after the signal. */
function outOfMemory(signal: string, config: ProcessConfig): string {
  if (signal !== "SIGTRAP") return "";
  return config.maxHeapMB === undefined
    ? " (V8 stops a process so when it runs out of memory)"
    : `: it ran out of memory (maxHeapMB: ${config.maxHeapMB})`;
}

/** The environment a child starts with when `clearEnv` is set: what `deno` needs, then `env`. */
function clearedEnv(env: Record<string, string> | undefined): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name of ["HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
    try {
      const value = Deno.env.get(name);
      if (value !== undefined) kept[name] = value;
    } catch {
      // No env access: deno falls back to its defaults.
    }
  }
  return { ...kept, ...env };
}

/**
 * Writes a child's own output to this program's stdout. The child's frames
 * wait behind it (they are read after it), so a task's output comes before
 * its result; a slow stdout slows that child, not this program.
 */
async function forwardOutput(bytes: Uint8Array): Promise<void> {
  let offset = 0;
  try {
    while (offset < bytes.byteLength) offset += await Deno.stdout.write(bytes.subarray(offset));
  } catch {
    // Our own stdout is closed: the output has nowhere to go.
  }
}

/** Whether a child of `config` maps this program's shared memory: it may use FFI, and so may we. */
function mapsMemory(config: ProcessConfig): boolean {
  return config.permissions.ffi === true && memoryKind() === "mapped";
}

function spawnProcess(
  init: Omit<WorkerInit, "jobStates">,
  capacity: number,
  config: ProcessConfig,
): WorkerHandle {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...childFlags(config.permissions, { moduleUrl: childUrl }),
      ...(config.maxHeapMB === undefined
        ? []
        : [`--v8-flags=--max-old-space-size=${config.maxHeapMB}`]),
      childUrl.href,
      String(capacity),
      config.guardAtOnce ? "now" : "later",
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
    cwd: config.cwd,
    env: config.clearEnv ? clearedEnv(config.env) : config.env,
    clearEnv: config.clearEnv,
  }).spawn();
  const channel = new FrameSender<ToWorker | ReplyMessage>(child.stdin.getWriter());
  const ledger = new ChildLedger(capacity);
  /** Set when the child sent what no honest child sends: the cause of its end. */
  let violation: Error | undefined;
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  };
  const violate = (reason: string) => {
    if (violation !== undefined) return;
    violation = new Error(`the child broke the protocol and was ended: it sent ${reason}`);
    session.close();
    kill();
  };
  const session = new BrokerSession((reply) => channel.send(reply), violate);
  /** Checks a message from the child and acts on it; ends the child on anything malformed. */
  const receive = (raw: unknown, bytes: number) => {
    if (violation !== undefined) return;
    try {
      const message = ledger.check(raw);
      if (message.type === "call") {
        session.perform(message, bytes).catch((error) => violate(`a bad call (${error})`));
        // A child that does not read its replies must not make the parent hold them.
        if (channel.backlog > MAX_FRAME) violate("more replies than it reads");
      } else if (message.type === "abort") session.abort(message);
      else if (!alive) return;
      else if (message.type === "done") handle.onMessage(reviveResults(message as CheckedDone));
      else handle.onMessage(message);
    } catch (error) {
      if (!(error instanceof ChildViolation)) throw error;
      violate(error.message);
    }
  };
  /** Swaps the handles the child named in its results for the parent's objects. */
  const reviveResults = (message: CheckedDone) => {
    const values = [...message.values];
    for (const i of message.handles) {
      try {
        values[i] = session.reviveFromChild(values[i]);
      } catch (error) {
        throw new ChildViolation(`in a result ${(error as Error).message}`);
      }
    }
    return { ...message, values };
  };
  let alive = true;
  /** Set once the child has exited and its stdout has been read to the end. */
  let dead = false;

  const output = child.stdout.getReader();
  const reader = new FrameReader<FromWorker | CallMessage | AbortMessage>(
    async () => {
      const { value, done } = await output.read();
      return done ? null : value;
    },
    forwardOutput,
  );
  const reading = reader.listen(receive).catch((error) => violate((error as Error).message));
  // A frame begun and never finished would hide everything after it.
  let stalledChecks = 0;
  let chunksSeen = 0;
  const watchStall = setInterval(() => {
    const progress = reader.chunks !== chunksSeen;
    chunksSeen = reader.chunks;
    if (!reader.midFrame || reader.passing || progress) stalledChecks = 0;
    else if (++stalledChecks >= STALL_CHECKS) {
      violate(`the start of a frame and not the rest (nothing for ${STALL_CHECKS} s)`);
    }
  }, STALL_CHECK_MS);
  Deno.unrefTimer(watchStall);
  let kept = true;
  const cancelTimers = new Set<ReturnType<typeof setTimeout>>();

  const shown: ChildStatus = {
    pid: child.pid,
    exitCode: null,
    signal: null,
    kill: (signal) => child.kill(signal),
  };
  const finished = (async () => {
    const status = await child.status;
    session.close();
    // A child that mapped our memory locked mutexes and changed queues directly: release the
    // mutexes it still held, finish what it was doing to a queue.
    if (mapsMemory(config)) recoverFromEndOf(child.pid);
    shown.exitCode = status.signal === null ? status.code : null;
    shown.signal = status.signal;
    // Read what the child wrote before it died. A grandchild may hold its stdout open: it is
    // let go once nothing has come for OUTPUT_GRACE_MS, or after OUTPUT_MAX_MS in all.
    let ended = false;
    reading.finally(() => ended = true);
    const giveUpAt = performance.now() + OUTPUT_MAX_MS;
    for (let seen = -1; !ended && (seen !== reader.chunks || reader.passing);) {
      const left = giveUpAt - performance.now();
      if (left <= 0) break;
      seen = reader.chunks;
      await settledWithin(reading, Math.min(OUTPUT_GRACE_MS, left));
    }
    clearInterval(watchStall);
    for (const timer of cancelTimers) clearTimeout(timer);
    await output.cancel().catch(() => {});
    await channel.close();
    dead = true;
    return status;
  })();

  finished.then((status) => {
    if (!alive) return;
    alive = false;
    handle.onExit(
      {
        code: status.signal === null ? status.code : null,
        signal: status.signal,
        cause: violation ??
          (status.signal === null
            ? new Error(`the process exited with code ${status.code}`)
            : new Error(
              `the process was killed by ${status.signal}${outOfMemory(status.signal, config)}`,
            )),
      } satisfies ExitInfo,
    );
  });

  const handle: WorkerHandle = {
    send(message: ToWorker) {
      if (message.type === "run") ledger.give(message.slots);
      channel.send(message);
    },
    withdraw(slot) {
      // Only a dead child's account of what it started is final.
      return dead && !ledger.hasStarted(slot);
    },
    drop(slot) {
      if (dead) return !ledger.hasStarted(slot);
      if (!ledger.drop(slot)) return false;
      channel.send({ type: "cancel", slot });
      return true;
    },
    started: (slot) => ledger.hasStarted(slot),
    keepAlive(on) {
      if (on === kept) return;
      kept = on;
      // Covers the child's status and the pending read of its stdout. A child that has just
      // exited has no resources left to mark (Deno throws BadResource): nothing to keep alive.
      try {
        if (on) child.ref();
        else child.unref();
      } catch (error) {
        if (!(error instanceof Deno.errors.BadResource)) throw error;
      }
    },
    cancel(slot, tellOnly) {
      // Tell the child (a task watching its signal stops), and kill it unless the job answers
      // in time; its exit sorts out the rest. A child that answers finishes what it holds and
      // is ended by the pool.
      channel.send({ type: "cancel", slot });
      if (tellOnly) return false;
      const timer = setTimeout(() => {
        cancelTimers.delete(timer);
        if (ledger.hasStarted(slot)) kill();
      }, CANCEL_GRACE_MS);
      cancelTimers.add(timer);
      return true;
    },
    async terminate(now) {
      alive = false;
      // The pool is done with this child: it is served no more calls.
      session.close();
      if (now) kill();
      // Closing its stdin ends an idle child with exit code 0; kill one that lingers.
      channel.close();
      const timer = setTimeout(kill, GRACEFUL_EXIT_MS);
      await finished;
      clearTimeout(timer);
    },
    onMessage: () => {},
    onExit: () => {},
  };
  statuses.set(handle, shown);
  // Without an `initializer: undefined` field, the message goes as JSON: a child then has no
  // need to load node:v8 (about 15 ms) before its first result.
  const { initializer, ...rest } = init;
  handle.send({ type: "init", init: (initializer === undefined ? rest : init) as WorkerInit });
  return handle;
}

registerTransport("process", {
  spawn: (init, capacity, config) => spawnProcess(init, capacity, config as ProcessConfig),
  extraOptions: CHILD_OPTIONS,
  context: parentContext,
  contextFor: (config) => mapsMemory(config as ProcessConfig) ? mappedChildContext : parentContext,
  check: encodeFrame,
  configure: (options, where): ProcessConfig => {
    checkParentCanSpawn(where);
    return {
      ...checkChildOptions(options, where),
      guardAtOnce: (options as { [GUARD_AT_ONCE]?: boolean })[GUARD_AT_ONCE] === true,
    };
  },
});

/** Fails early, with the flag to add, when this program may not start children. */
function checkParentCanSpawn(where: string): void {
  let state: Deno.PermissionState;
  try {
    state = Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state;
  } catch {
    state = "denied";
  }
  if (state !== "granted") {
    throw new TypeError(
      `${where}: child processes need --allow-run (to start \`deno\`); run with it or -A`,
    );
  }
}

/** What `Process` shows of its child: the pid, and how it ended once it has. */
export interface ChildStatus {
  pid: number;
  exitCode: number | null;
  signal: string | null;
  kill(signal: Deno.Signal): void;
}

/** The status of a child behind a handle made here. */
export function childStatus(handle: WorkerHandle): ChildStatus | undefined {
  return statuses.get(handle);
}

const statuses = new WeakMap<WorkerHandle, ChildStatus>();
