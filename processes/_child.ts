/**
 * The entry module of every child process (`deno run … _child.ts PORT JOURNAL
 * CAPACITY`): it proves itself to the parent with the token read from stdin,
 * then runs the shared runner over the framed channel.
 *
 * Before each job it appends the job's id to the journal file with a
 * synchronous write. If the child dies, the parent reads the journal to learn
 * exactly which of the jobs it had sent were started (they fail with
 * `WorkerCrashedError`) and which never were (they run elsewhere): no task is
 * run twice, none is lost.
 *
 * @module
 */

import { startRunner } from "../internal/runner.ts";
import type { FromWorker, ToWorker } from "../internal/protocol.ts";
import {
  type AbortMessage,
  type CallMessage,
  childContext,
  connectBroker,
  type ReplyMessage,
} from "../internal/broker.ts";
import { encodeFrame, FrameChannel } from "./_channel.ts";

const [port, journalPath, capacity] = Deno.args;

/**
 * The watchdog thread: it holds the read end of the pipe the parent writes
 * to this child's stdin. When the parent dies, even by SIGKILL, the pipe
 * closes and the watchdog kills this process. It runs on its own thread, so
 * it works even while the main thread is stuck in a synchronous loop that
 * no event could interrupt. (The parent writes nothing after the token.)
 */
const WATCHDOG = `
const buffer = new Uint8Array(256);
try {
  while (await Deno.stdin.read(buffer) !== null) {}
} finally {
  Deno.kill(Deno.pid, "SIGKILL");
}
`;

/** The token is this many hex digits and a newline; the parent writes nothing else. */
const TOKEN_LINE = 65;

/** Reads the token line the parent wrote to stdin. */
async function readToken(): Promise<string> {
  const line = new Uint8Array(TOKEN_LINE);
  let filled = 0;
  while (filled < TOKEN_LINE) {
    const read = await Deno.stdin.read(line.subarray(filled));
    if (read === null) Deno.exit(0);
    filled += read;
  }
  return new TextDecoder().decode(line.subarray(0, TOKEN_LINE - 1));
}

const [token, connection] = await Promise.all([
  readToken(),
  Deno.connect({ hostname: "127.0.0.1", port: Number(port) }),
]);
connection.setNoDelay(true);

const journal = Deno.openSync(journalPath, { write: true, create: true, append: true });
const entry = new Uint8Array(4);
const entryView = new DataView(entry.buffer);

const channel = new FrameChannel<
  ToWorker | ReplyMessage,
  FromWorker | CallMessage | AbortMessage | { type: "hello"; token: string }
>(connection);
channel.send({ type: "hello", token });
await channel.drained();
// From here the watchdog owns stdin: it ends this process if the parent dies,
// even while this thread is stuck in a synchronous loop. Creating it blocks
// this thread for about 9 ms, so it happens while the parent answers the hello.
// It starts from a data: URL: a worker's file would need read access to this
// package, which the parent itself may not have (a child gets nothing its parent lacks).
new Worker(`data:application/javascript,${encodeURIComponent(WATCHDOG)}`, {
  type: "module",
  name: "watchdog",
});
const settleCall = connectBroker((message) => channel.send(message));

const runner = startRunner((message) => channel.send(message), {
  jobStates: new SharedArrayBuffer(Number(capacity) * Int32Array.BYTES_PER_ELEMENT),
  context: childContext,
  sent: () => channel.drained(),
  check: encodeFrame,
  beforeJob(id) {
    entryView.setInt32(0, id, true);
    journal.writeSync(entry);
  },
});

await channel.listen((message) => {
  if (message.type === "reply") settleCall(message);
  else runner.receive(message);
});
// The parent closed the channel: nothing more to do.
Deno.exit(0);
