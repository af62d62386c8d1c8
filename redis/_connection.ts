/**
 * Connections to Redis for the `redis/` module. A {@linkcode Link} is one
 * connection that runs commands safe to repeat: when the connection drops,
 * or a command gets no answer in time, the link throws the connection away,
 * makes a new one (with backoff) and runs the command again. A handle has
 * one link for commands that answer at once and a pool of links for blocking
 * commands (a blocked connection serves nothing else). Only the very first
 * connection of a handle fails at once, with an error naming the URL.
 *
 * @module
 */

// Pinned here rather than in deno.json's imports, so that the module also resolves from a plain
// `deno run --no-config` (as a worker machine may run it).
// deno-lint-ignore no-import-prefix
import { createClient, RESP_TYPES } from "npm:redis@5.9.0";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { checkOptionNames, show } from "../internal/options.ts";
import { settledWithin } from "../internal/wait.ts";

type BaseClient = ReturnType<typeof createClient>;
/** A client whose bulk strings arrive as bytes. */
export type BinaryClient = ReturnType<typeof binary>;

function binary(client: BaseClient) {
  return client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
}

const shas = new Map<string, string>();

/**
 * Runs a Lua script by its SHA1, which Redis keeps compiled, sending its text
 * only when Redis does not know it yet (first use, or after a restart).
 */
export async function evalScript(
  client: BinaryClient,
  script: string,
  options: { keys: string[]; arguments: (string | Buffer)[] },
): Promise<unknown> {
  let sha = shas.get(script);
  if (sha === undefined) {
    sha = createHash("sha1").update(script).digest("hex");
    shas.set(script, sha);
  }
  try {
    return await client.evalSha(sha, options);
  } catch (error) {
    if (!String((error as Error)?.message).startsWith("NOSCRIPT")) throw error;
    return await client.eval(script, options);
  }
}

/** How long a command that answers at once may take before its connection is presumed dead. */
const ANSWER_MS = 5_000;
/** How long a graceful close may wait for answers before the socket is destroyed. */
const CLOSE_MS = 1_000;
/** The longest wait between two attempts to reconnect. */
const MAX_BACKOFF_MS = 2_000;

/**
 * When the server drops a connection (`CLIENT KILL`, a restart), Deno
 * 2.9.6's `node:net` throws the socket's error (EPIPE on a write after the
 * close, ECONNRESET on a read) out of the client's callbacks or from a
 * promise of its own, where Node.js only emits an error event; the command
 * it was writing may then never be answered. A link replaces such a
 * connection, so those errors are noise: only they are silenced.
 */
function silenceDroppedSockets(): void {
  const dropped = (error: unknown) => {
    const { code, stack } = (error ?? {}) as { code?: unknown; stack?: unknown };
    return (code === "EPIPE" || code === "ECONNRESET") && String(stack).includes("ext:deno_node/");
  };
  globalThis.addEventListener("unhandledrejection", (event) => {
    if (dropped(event.reason)) event.preventDefault();
  });
  globalThis.addEventListener("error", (event) => {
    if (dropped(event.error)) event.preventDefault();
  });
}
let silenced = false;

/** Whether `error` says the connection is gone (not a reply of Redis's, nor one of ours). */
function isConnectionError(error: unknown): boolean {
  if (error instanceof NoAnswer) return true;
  const code = (error as { code?: unknown })?.code;
  if (typeof code === "string" && /^E(PIPE|CONN\w+|TIMEDOUT|NOTCONN|\w+UNREACH)$/.test(code)) {
    return true;
  }
  const name = (error as Error)?.constructor?.name ?? "";
  return /Socket|Connection|Offline|Reconnect|Disconnect|ClientClosed/.test(name);
}

class NoAnswer extends Error {}

/** The first connection of a handle failed: the server is not there (the error names the URL). */
export class UnreachableError extends Error {
  override name = "UnreachableError";
}

interface Opened {
  base: BaseClient;
  client: BinaryClient;
}

/** One connection that runs repeatable commands through drops (see the module comment). */
export class Link {
  readonly #url: string;
  readonly #who: string;
  readonly #onFirstOpen: () => void;
  #current?: Promise<Opened>;
  #everOpened = false;
  #closed = false;
  /** The connection `#current` resolved to, once it has. */
  #opened?: Opened;
  /** End the backoff pauses in progress (on close). */
  readonly #wakers = new Set<() => void>();

  constructor(url: string, who: string, onFirstOpen: () => void = () => {}) {
    this.#url = url;
    this.#who = who;
    this.#onFirstOpen = onFirstOpen;
  }

  /**
   * Runs `command` on this connection, again on a new one if the connection
   * drops or `command` gets no answer within `answerMs` (its own waiting
   * time, for a blocking command, plus {@linkcode ANSWER_MS}).
   */
  async run<R>(command: (client: BinaryClient) => Promise<R>, waitMs = 0): Promise<R> {
    for (let attempt = 0;; attempt++) {
      this.#checkOpen();
      let opened: Opened | undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        // Inside the try: a reconnect refused while the server is down is retried with backoff.
        opened = await this.#open();
        return await Promise.race([
          command(opened.client),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new NoAnswer()), waitMs + ANSWER_MS);
          }),
        ]);
      } catch (error) {
        if (!isConnectionError(error) || this.#closed) throw error;
        if (opened !== undefined) this.#drop(opened);
      } finally {
        clearTimeout(timer);
      }
      await new Promise<void>((resolve) => {
        let pause: ReturnType<typeof setTimeout> | undefined = undefined;
        const done = () => {
          clearTimeout(pause);
          this.#wakers.delete(done);
          resolve();
        };
        this.#wakers.add(done);
        pause = setTimeout(done, Math.min(MAX_BACKOFF_MS, 10 * 2 ** attempt));
      });
    }
  }

  /** Closes the connection; later commands fail. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const wake of [...this.#wakers]) wake();
    const current = this.#current;
    this.#current = undefined;
    const opened = await current?.catch(() => undefined);
    if (opened === undefined) return;
    // A graceful close waits for the answers to the commands in flight, which a dead server
    // never sends: after a moment the socket is simply destroyed.
    const closing = opened.base.close().then(() => true, () => false);
    if (await settledWithin(closing, CLOSE_MS) && await closing) return;
    try {
      opened.base.destroy();
    } catch {
      // Already closed.
    }
  }

  async #open(): Promise<Opened> {
    this.#current ??= this.#connect();
    try {
      return await this.#current;
    } catch (error) {
      this.#current = undefined;
      throw error;
    }
  }

  async #connect(): Promise<Opened> {
    if (!silenced) {
      silenced = true;
      silenceDroppedSockets();
    }
    // No reconnecting inside the client: a dropped connection is replaced whole.
    const base = createClient({
      url: this.#url,
      socket: { connectTimeout: ANSWER_MS, reconnectStrategy: false },
    });
    base.on("error", () => {});
    try {
      await base.connect();
    } catch (error) {
      if (!this.#everOpened) {
        throw new UnreachableError(
          `${this.#who}: cannot reach Redis at ${this.#url}: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      }
      // A reconnect that failed: the caller's loop tries again after a pause.
      throw Object.assign(new NoAnswer((error as Error).message), { cause: error });
    }
    if (!this.#everOpened) {
      this.#everOpened = true;
      this.#onFirstOpen();
    }
    if (this.#closed) {
      base.destroy();
      this.#checkOpen();
    }
    this.#opened = { base, client: binary(base) };
    return this.#opened;
  }

  #drop(opened: Opened): void {
    // Only if it is still the current one: another command may have replaced it already.
    if (this.#opened === opened) {
      this.#current = undefined;
      this.#opened = undefined;
    }
    try {
      opened.base.destroy();
    } catch {
      // Already gone.
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error(`${this.#who}: disconnect() was called`);
  }
}

/** A blocking link and the list its moves go through. */
export interface BlockingLink {
  readonly link: Link;
  /** Where a get moves an item before it answers (see `RedisQueue.get`). */
  readonly pending: string;
}

/** The links of one handle (a queue or a pool front). */
export class Connections {
  readonly #url: string;
  readonly #who: string;
  readonly main: Link;
  readonly #idle: BlockingLink[] = [];
  readonly #all = new Set<Link>();
  #closed = false;

  constructor(url: string, who: string) {
    this.#url = url;
    this.#who = who;
    this.main = new Link(url, who);
    this.#all.add(this.main);
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Runs `use` on a blocking link of its own, then keeps the link for the next. */
  async blocking<R>(
    pendingPrefix: string,
    use: (blocking: BlockingLink) => Promise<R>,
  ): Promise<R> {
    if (this.#closed) throw new Error(`${this.#who}: disconnect() was called`);
    let blocking = this.#idle.pop();
    if (blocking === undefined) {
      // The main link first: an unreachable server fails with one error naming the URL.
      await this.main.run((client) => client.ping());
      blocking = {
        link: new Link(this.#url, this.#who),
        pending: `${pendingPrefix}${crypto.randomUUID()}`,
      };
      this.#all.add(blocking.link);
    }
    try {
      return await use(blocking);
    } finally {
      if (this.#closed) void blocking.link.close();
      else this.#idle.push(blocking);
    }
  }

  /** Closes every link of this handle; later calls fail. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#idle.length = 0;
    await Promise.all([...this.#all].map((link) => link.close()));
  }
}

/**
 * Checks the option names of a Redis handle (`url`, `name` and `others`),
 * and that `url` and `name` are non-empty strings.
 *
 * @throws {TypeError} Naming the option and its value.
 */
export function checkServerOptions(
  options: object,
  others: readonly string[],
  where: string,
): void {
  checkOptionNames(options, ["url", "name", ...others], where);
  for (const key of ["url", "name"]) {
    const value = (options as Record<string, unknown>)[key];
    if (typeof value !== "string" || value === "") {
      throw new TypeError(
        `${where}: '${key}' must be a non-empty string: current value is ${show(value)}`,
      );
    }
  }
}

/** A key or id Redis sent, as text (the clients here map bulk strings to bytes). */
export function decode(raw: Uint8Array | string): string {
  return typeof raw === "string" ? raw : new TextDecoder().decode(raw);
}
