/**
 * The process transport: a {@linkcode WorkerHandle} over a `deno run` child.
 * Importing this module registers it with the scheduler.
 *
 * One loopback TCP listener per parent (127.0.0.1, a port the system picks)
 * takes the children's connections. A child proves itself with a random token
 * that the parent wrote to its stdin; any other connection is closed before a
 * byte of it is trusted. (A Unix socket would need the same `--allow-net`
 * grant, for a path that cannot be named in advance; loopback TCP lets the
 * parent be granted just `--allow-net=127.0.0.1`.) The journals live in a
 * private temporary directory (mode 0700). The stdin pipe stays open for the child's life: when
 * the parent dies, the child's watchdog sees it close and ends the child.
 *
 * A child cannot share memory with its parent, so a job cannot be withdrawn
 * while the child lives; instead the child journals each job id before it
 * starts, and once the child is dead the journal says which jobs never ran.
 * Cancelling a task in a child kills the child.
 *
 * @module
 */

import { type ExitInfo, registerTransport, type WorkerHandle } from "../internal/pool.ts";
import type { FromWorker, ToWorker, WorkerInit } from "../internal/protocol.ts";
import {
  type AbortMessage,
  BrokerSession,
  type CallMessage,
  ChildViolation,
  parentContext,
  type ReplyMessage,
} from "../internal/broker.ts";
import { encodeFrame, FrameChannel, MAX_FRAME } from "./_channel.ts";
import { childFlags, type ResolvedPermissions, resolvePermissions } from "./_permissions.ts";
import { type CheckedDone, ChildLedger } from "./_untrusted.ts";

const childUrl = new URL("./_child.ts", import.meta.url);

/** How long an idle child may take to exit once its channel closes. */
const GRACEFUL_EXIT_MS = 2_000;

/** The most journal entries read back: more than any child runs between two reads. */
const MAX_JOURNAL_ENTRIES = 1 << 22;

/** How long a connection may take to prove itself. */
const HELLO_TIMEOUT_MS = 10_000;

/** The longest frame a connection may send before it has proved itself: a hello is ~90 bytes. */
const HELLO_MAX_FRAME = 1024;

/** Connections that may be waiting to prove themselves at once; more are closed at once. */
const MAX_UNPROVEN = 64;

interface Hello {
  type: "hello";
  token: string;
}

/** Receives a child's channel and its incoming messages once it has proved itself. */
type Admit = (
  channel: FrameChannel<FromWorker | CallMessage | AbortMessage, ToWorker | ReplyMessage>,
  listen: (
    handler: (message: FromWorker | CallMessage | AbortMessage, bytes: number) => void,
  ) => Promise<void>,
) => void;

/** The listener and directory that all children of this program use. */
class Rendezvous {
  readonly dir: string;
  readonly port: number;
  readonly #listener: Deno.TcpListener;
  readonly #expected = new Map<string, Admit>();
  #users = 0;
  #unproven = 0;
  #closed = false;

  constructor() {
    this.dir = Deno.makeTempDirSync({ prefix: "parallel-core-" });
    Deno.chmodSync(this.dir, 0o700);
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = this.#listener.addr.port;
    this.#accept();
  }

  async #accept(): Promise<void> {
    while (!this.#closed) {
      let connection: Deno.TcpConn;
      try {
        connection = await this.#listener.accept();
      } catch {
        if (this.#closed) return;
        // Out of file descriptors, say: children still to come must not be locked out.
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      this.#greet(connection);
    }
  }

  /** Admits a connection whose first message carries a token we expect; closes any other. */
  #greet(connection: Deno.TcpConn): void {
    if (this.#unproven >= MAX_UNPROVEN) {
      connection.close();
      return;
    }
    this.#unproven++;
    let unproven = true;
    const proven = () => {
      if (unproven) this.#unproven--;
      unproven = false;
    };
    connection.setNoDelay(true);
    const channel = new FrameChannel<
      FromWorker | CallMessage | AbortMessage | Hello,
      ToWorker | ReplyMessage
    >(connection, HELLO_MAX_FRAME);
    const timer = setTimeout(() => channel.close(), HELLO_TIMEOUT_MS);
    let forward:
      | ((message: FromWorker | CallMessage | AbortMessage, bytes: number) => void)
      | undefined;
    let listened: PromiseWithResolvers<void> | undefined;
    const done = channel.listen((message, bytes) => {
      if (forward !== undefined) {
        forward(message as FromWorker | CallMessage | AbortMessage, bytes);
        return;
      }
      if (listened !== undefined) return; // Admitted, its handler not yet set.
      clearTimeout(timer);
      proven();
      const hello = message as Hello;
      const admit = hello?.type === "hello" && typeof hello.token === "string"
        ? this.#expected.get(hello.token)
        : undefined;
      if (admit === undefined) {
        channel.close();
        return;
      }
      this.#expected.delete(hello.token);
      channel.maxFrame = MAX_FRAME;
      listened = Promise.withResolvers<void>();
      admit(
        channel as FrameChannel<FromWorker | CallMessage | AbortMessage, ToWorker | ReplyMessage>,
        (handler) => {
          forward = handler;
          return listened!.promise;
        },
      );
    });
    done.then(
      () => listened?.resolve(),
      // Once admitted, a stream that breaks the framing is the child's doing.
      (error) => listened?.reject(error),
    ).finally(() => {
      clearTimeout(timer);
      proven();
      // A connection that ended or broke the framing before it was admitted is closed here.
      if (listened === undefined) channel.close();
    });
  }

  /** Registers a child's token; `admit` receives its channel once it connects. */
  expect(token: string, admit: Admit): void {
    this.#users++;
    this.#expected.set(token, admit);
  }

  /** A child is gone; the last one out closes the socket and removes the directory. */
  release(token: string): void {
    this.#expected.delete(token);
    if (--this.#users > 0) return;
    this.close();
    if (rendezvous === this) rendezvous = undefined;
  }

  close(): void {
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    try {
      Deno.removeSync(this.dir, { recursive: true });
    } catch {
      // Already removed.
    }
  }
}

let rendezvous: Rendezvous | undefined;
globalThis.addEventListener("unload", () => rendezvous?.close());

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The task ids a dead child journalled as started. */
/**
 * The task ids a dead child journalled as started. The child can write its
 * journal, so at most `given` entries (one per task it was given) are read.
 */
function readJournal(path: string, given: number): Set<number> {
  const started = new Set<number>();
  try {
    using file = Deno.openSync(path);
    const bytes = new Uint8Array(Math.min(given, MAX_JOURNAL_ENTRIES) * 4);
    let filled = 0;
    while (filled < bytes.byteLength) {
      const read = file.readSync(bytes.subarray(filled));
      if (read === null || read === 0) break;
      filled += read;
    }
    const view = new DataView(bytes.buffer, 0, filled);
    for (let offset = 0; offset + 4 <= filled; offset += 4) {
      started.add(view.getInt32(offset, true));
    }
  } catch {
    // No journal: the child started nothing.
  }
  return started;
}

function spawnProcess(
  init: Omit<WorkerInit, "jobStates">,
  capacity: number,
  permissions: ResolvedPermissions,
): WorkerHandle {
  rendezvous ??= new Rendezvous();
  const meeting = rendezvous;
  const token = randomToken();
  const journal = `${meeting.dir}/journal-${init.id}`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...childFlags(permissions, {
        write: [journal],
        net: [`127.0.0.1:${meeting.port}`],
        moduleUrl: childUrl,
      }),
      childUrl.href,
      String(meeting.port),
      journal,
      String(capacity),
    ],
    stdin: "piped",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const stdin = child.stdin.getWriter();
  stdin.write(new TextEncoder().encode(token + "\n")).catch(() => {});

  let channel:
    | FrameChannel<FromWorker | CallMessage | AbortMessage, ToWorker | ReplyMessage>
    | undefined;
  const ledger = new ChildLedger(capacity);
  /** How many tasks the child was given: the most journal entries worth reading. */
  let given = 0;
  /** Set when the child sent what no honest child sends: the cause of its end. */
  let violation: Error | undefined;
  const violate = (reason: string) => {
    if (violation !== undefined) return;
    violation = new Error(`the child broke the protocol and was ended: it sent ${reason}`);
    session.close();
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  };
  const session = new BrokerSession((reply) => channel?.send(reply), violate);
  /** Checks a message from the child and acts on it; ends the child on anything malformed. */
  const receive = (raw: unknown, bytes: number) => {
    if (violation !== undefined) return;
    try {
      const message = ledger.check(raw);
      if (message.type === "call") {
        session.perform(message, bytes).catch((error) => violate(`a bad call (${error})`));
        // A child that does not read its replies must not make the parent hold them.
        if ((channel?.backlog ?? 0) > MAX_FRAME) violate("more replies than it reads");
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
  let outbox: ToWorker[] = [];
  let alive = true;
  let started: Set<number> | undefined;
  const idBySlot = new Map<number, number>();
  let reading: Promise<void> = Promise.resolve();

  meeting.expect(token, (connected, listen) => {
    channel = connected;
    for (const message of outbox) channel.send(message);
    outbox = [];
    reading = listen(receive).catch((error) => violate((error as Error).message));
  });

  const shown: ChildStatus = {
    pid: child.pid,
    exitCode: null,
    signal: null,
    kill: (signal) => child.kill(signal),
  };
  const finished = (async () => {
    const status = await child.status;
    session.close();
    shown.exitCode = status.signal === null ? status.code : null;
    shown.signal = status.signal;
    // Let the last outcomes the child wrote arrive before reporting its end.
    await reading;
    return status;
  })();

  const cleanUp = async () => {
    const status = await finished;
    meeting.release(token);
    await stdin.close().catch(() => {});
    channel?.close();
    try {
      Deno.removeSync(journal);
    } catch {
      // Never written.
    }
    return status;
  };

  finished.then((status) => {
    started = readJournal(journal, given);
    if (!alive) return;
    alive = false;
    handle.onExit(
      {
        code: status.signal === null ? status.code : null,
        signal: status.signal,
        cause: violation ??
          (status.signal === null
            ? new Error(`the process exited with code ${status.code}`)
            : new Error(`the process was killed by ${status.signal}`)),
      } satisfies ExitInfo,
    );
  });
  const ended = cleanUp();

  const handle: WorkerHandle = {
    send(message: ToWorker) {
      if (message.type === "run") {
        ledger.give(message.slots);
        given += message.slots.length;
        for (let i = 0; i < message.slots.length; i++) {
          idBySlot.set(message.slots[i], message.ids[i]);
        }
      }
      if (channel === undefined) {
        // Encode now, so that a message that cannot be sent fails at once.
        encodeFrame(message);
        outbox.push(message);
      } else {
        channel.send(message);
      }
    },
    withdraw(slot) {
      // Only a dead child's journal is final.
      if (started === undefined) return false;
      const id = idBySlot.get(slot);
      return id !== undefined && !started.has(id);
    },
    cancel() {
      // A process can be stopped: kill it, and the journal sorts out the rest when it exits.
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone: its exit is on its way.
      }
      return true;
    },
    async terminate() {
      alive = false;
      // The pool is done with this child: it is served no more calls.
      session.close();
      // Closing the channel ends an idle child with exit code 0; kill one that lingers.
      // (Its stdin stays open until it has exited, or its watchdog would kill it.)
      channel?.close();
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already gone.
        }
      }, channel === undefined ? 0 : GRACEFUL_EXIT_MS);
      await ended;
      clearTimeout(timer);
    },
    onMessage: () => {},
    onExit: () => {},
  };
  statuses.set(handle, shown);
  handle.send({ type: "init", init: init as WorkerInit });
  return handle;
}

registerTransport("process", {
  spawn: (init, capacity, permissions) =>
    spawnProcess(init, capacity, permissions as ResolvedPermissions),
  extraOptions: ["permissions"],
  context: parentContext,
  check: encodeFrame,
  configure: (options, where) => {
    checkParentCanSpawn(where);
    return resolvePermissions(options.permissions, where);
  },
});

/**
 * Fails early, with the flags to add, when this program may not start
 * children or listen for them.
 */
function checkParentCanSpawn(where: string): void {
  const missing: string[] = [];
  const state = (descriptor: Deno.PermissionDescriptor) => {
    try {
      return Deno.permissions.querySync(descriptor).state;
    } catch {
      return "denied";
    }
  };
  if (state({ name: "run", command: Deno.execPath() }) !== "granted") missing.push("--allow-run");
  if (state({ name: "net", host: "127.0.0.1" }) !== "granted") {
    missing.push("--allow-net=127.0.0.1");
  }
  if (
    state({ name: "write" }) !== "granted" &&
    state({ name: "write", path: tempDir() }) !== "granted"
  ) {
    missing.push(`--allow-write=${tempDir()}`);
  }
  if (
    state({ name: "read" }) !== "granted" && state({ name: "read", path: tempDir() }) !== "granted"
  ) {
    missing.push(`--allow-read=${tempDir()}`);
  }
  if (missing.length > 0) {
    throw new TypeError(
      `${where}: child processes need ${missing.join(" ")} (to start \`deno\`, meet the child on ` +
        `127.0.0.1 and keep its journal in the temporary directory); run with those flags or -A`,
    );
  }
}

function tempDir(): string {
  try {
    return Deno.env.get("TMPDIR") || "/tmp";
  } catch {
    return "/tmp";
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
