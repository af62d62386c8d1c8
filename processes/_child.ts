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
  type CallMessage,
  childContext,
  connectBroker,
  type ReplyMessage,
} from "../internal/broker.ts";
import { FrameChannel } from "./_channel.ts";

const [port, journalPath, capacity] = Deno.args;

/** Reads the token line the parent wrote to stdin. */
async function readToken(): Promise<string> {
  const bytes: number[] = [];
  const buffer = new Uint8Array(1);
  while (true) {
    const read = await Deno.stdin.read(buffer);
    if (read === null) Deno.exit(0);
    if (buffer[0] === 10) return new TextDecoder().decode(new Uint8Array(bytes));
    bytes.push(buffer[0]);
  }
}

const token = await readToken();
// From here the watchdog owns stdin: it ends this process if the parent dies.
new Worker(new URL("./_watchdog.ts", import.meta.url), { type: "module", name: "watchdog" });

const journal = Deno.openSync(journalPath, { write: true, create: true, append: true });
const entry = new Uint8Array(4);
const entryView = new DataView(entry.buffer);

const connection = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
connection.setNoDelay(true);
const channel = new FrameChannel<
  ToWorker | ReplyMessage,
  FromWorker | CallMessage | { type: "hello"; token: string }
>(connection);
channel.send({ type: "hello", token });
const settleCall = connectBroker((message) => channel.send(message));

const receive = startRunner((message) => channel.send(message), {
  jobStates: new SharedArrayBuffer(Number(capacity) * Int32Array.BYTES_PER_ELEMENT),
  context: childContext,
  beforeJob(id) {
    entryView.setInt32(0, id, true);
    journal.writeSync(entry);
  },
});

for await (const message of channel.receive()) {
  if (message.type === "reply") settleCall(message);
  else receive(message);
}
// The parent closed the channel: nothing more to do.
Deno.exit(0);
