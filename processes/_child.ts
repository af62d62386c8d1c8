/**
 * The entry module of every child process (`deno run … _child.ts CAPACITY
 * GUARD`): it runs the shared runner over its own pipes, reading frames from
 * stdin and writing frames to stdout (`_channel.ts`).
 *
 * Before each job it writes, with one synchronous write, the outcomes of the
 * jobs before it and a `started` message for this one. What is in the pipe
 * survives the child's death, so the parent knows exactly which jobs finished
 * (they keep their results), which one was running (it fails with
 * `WorkerCrashedError`) and which never started (they run elsewhere).
 *
 * A child ends when its parent does: stdin ends, and the child exits. A main
 * thread stuck in a synchronous loop cannot see that, so a watchdog thread
 * polls `Deno.ppid` and kills the child once the parent is gone. Starting a
 * thread blocks this one for 10–40 ms, so a pool's child starts it once its
 * first result has left, or at once if it starts with no task (`GUARD` is
 * `later`); a `Process` starts it at once (`now`).
 *
 * @module
 */

import { sendableDone, startRunner } from "../internal/runner.ts";
import type { DoneMessage, FromWorker, ToWorker } from "../internal/protocol.ts";
import {
  type AbortMessage,
  type CallMessage,
  childContext,
  connectBroker,
  type ReplyMessage,
} from "../internal/broker.ts";
import { packError } from "../internal/codec.ts";
import { SerializationError } from "../errors.ts";
import { encodeFrame, FrameReader, FrameWriter } from "./_channel.ts";

const [capacity, guard] = Deno.args;
const parentPid = Deno.ppid;

/** How often the watchdog looks for the parent. */
const WATCHDOG_MS = 500;

let guarded = false;
/** Starts the watchdog thread, once. It starts from a `data:` URL: a file would need read access. */
function startWatchdog(): void {
  if (guarded) return;
  guarded = true;
  const source = `setInterval(() => { if (Deno.ppid !== ${parentPid}) ` +
    `Deno.kill(Deno.pid, "SIGKILL"); }, ${WATCHDOG_MS});`;
  new Worker(`data:application/javascript,${encodeURIComponent(source)}`, {
    type: "module",
    name: "watchdog",
  });
}
if (guard === "now") startWatchdog();

// Bound now: a task that replaces `Deno.stdout.writeSync` does not reroute the frames.
const stdout = Deno.stdout.writeSync.bind(Deno.stdout);
const stdin = Deno.stdin.read.bind(Deno.stdin);
/** The messages a child sends. */
type Outgoing = FromWorker | CallMessage | AbortMessage;

const writer = new FrameWriter<Outgoing>((bytes) => {
  try {
    return stdout(bytes);
  } catch (error) {
    // The parent is gone, or a task closed this child's stdout.
    try {
      console.error(
        `@parallel/core: a child process cannot write to its parent and exits: ${error}`,
      );
    } catch {
      // No stderr either.
    }
    Deno.exit(70);
  }
}, repair);

const settleCall = connectBroker((message) => writer.send(message));

/** What to send instead of a message that turned out to be unsendable once node:v8 loaded. */
function repair(message: Outgoing, error: unknown): Outgoing | undefined {
  switch (message.type) {
    case "done":
      return sendableDone(message as DoneMessage, encodeFrame);
    case "init-failed":
      return {
        type: "init-failed",
        error: packError(
          new SerializationError(
            `Cannot send the initializer's error: ${(error as Error).message}`,
          ),
        ),
      };
    case "call":
      // The call fails in this child; one-way calls (call 0) have no one to tell.
      if (message.call !== 0) {
        settleCall({
          type: "reply",
          call: message.call,
          ok: false,
          value: packError(error),
          modules: [],
        });
      }
      return undefined;
    default:
      return undefined;
  }
}

let answered = false;
const runner = startRunner((message) => {
  writer.send(message);
  if (message.type === "done") answered = true;
}, {
  jobStates: new SharedArrayBuffer(Number(capacity) * Int32Array.BYTES_PER_ELEMENT),
  context: childContext,
  check: encodeFrame,
  reportEachJob: true,
  writeOut() {
    const written = writer.writeNow();
    // Once the first result has left, the watchdog may cost its time, before any job that
    // might never yield.
    if (answered) startWatchdog();
    return written;
  },
});

const chunk = new Uint8Array(64 * 1024);
let initialised = false;
let given = false;
const reader = new FrameReader<ToWorker | ReplyMessage>(async () => {
  // A child started before any task was (`minWorkers`) has nothing to delay: once it has read
  // what it was sent (not half a frame: a large first task) and holds no task, it guards itself. (Not with a timer: the first
  // setTimeout of a program costs about 12 ms in Deno 2.9.6, before the first result.)
  if (initialised && !given && !reader.midFrame) startWatchdog();
  const read = await stdin(chunk);
  return read === null ? null : chunk.subarray(0, read);
});
await reader.listen((message) => {
  if (message.type === "reply") settleCall(message);
  else runner.receive(message);
  if (message.type === "run") given = true;
  if (message.type === "init") initialised = true;
});
// The parent closed stdin: nothing more to do.
Deno.exit(0);
