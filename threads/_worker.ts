/**
 * The entry module of every thread: it runs the shared runner and reports the
 * ways a worker can end that Deno does not report to the main thread.
 *
 * Deno sends the main thread no event when a worker calls `self.close()` or
 * `Deno.exit()`, so this module says so itself: `close` is wrapped to send an
 * `exit` message first, and `Deno.exit()` fires the worker's `unload` event,
 * which sends one too. An uncaught error reaches the main thread as an
 * `error` event, which the transport handles.
 *
 * @module
 */

import { startRunner } from "../internal/runner.ts";
import type { FromWorker, ToWorker } from "../internal/protocol.ts";

const scope = globalThis as unknown as {
  postMessage(message: FromWorker): void;
  close(): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
};

const runner = startRunner((message) => scope.postMessage(message));
scope.onmessage = (event) => runner.receive(event.data);

// Either way out, the outcomes not sent yet go first: a finished task keeps its result.
const close = scope.close.bind(globalThis);
scope.close = () => {
  runner.flush();
  scope.postMessage({ type: "exit", code: null, reason: "the worker called self.close()" });
  close();
};
addEventListener("unload", () => {
  runner.flush();
  scope.postMessage({ type: "exit", code: Deno.exitCode, reason: "the worker called Deno.exit()" });
});
