/**
 * The thread transport: a {@linkcode WorkerHandle} over a Web Worker running
 * `_worker.ts`. Importing this module registers it with the scheduler.
 *
 * The job-state words are a SharedArrayBuffer both sides see, so withdrawing
 * a queued job and flagging a running one as cancelled are single atomic
 * operations, even while the worker is busy in a synchronous loop.
 *
 * @module
 */

import { type ExitInfo, registerTransport, type WorkerHandle } from "../internal/pool.ts";
import {
  CANCELLED,
  type FromWorker,
  QUEUED,
  type ToWorker,
  type WorkerInit,
} from "../internal/protocol.ts";

const workerUrl = new URL("./_worker.ts", import.meta.url);

/**
 * Deno's own switch for whether a Worker keeps the program alive, the one
 * `node:worker_threads`' `ref()` and `unref()` call: in Deno 2.9.6 a method
 * under an unnamed symbol on `Worker.prototype` that counts refs. Where it is
 * not found, a worker always keeps the program alive, as before.
 */
const refWorker = (() => {
  const proto = Worker.prototype as unknown as Record<symbol, unknown>;
  for (const key of Object.getOwnPropertySymbols(proto)) {
    const method = proto[key];
    if (
      key.description === undefined && typeof method === "function" && method.length === 1 &&
      String(method).includes("unrefOpPromise")
    ) {
      return method as (this: Worker, ref: boolean) => void;
    }
  }
  return undefined;
})();

function spawnThread(init: Omit<WorkerInit, "jobStates">, capacity: number): WorkerHandle {
  const jobStates = new Int32Array(new SharedArrayBuffer(capacity * Int32Array.BYTES_PER_ELEMENT));
  const worker = new Worker(workerUrl, { type: "module", name: init.name });
  let alive = true;
  let kept = true;
  const exited = (exit: ExitInfo) => {
    if (!alive) return;
    alive = false;
    worker.terminate();
    handle.onExit(exit);
  };
  /** The compare-and-swap on the shared slot word decides, exactly. */
  function withdraw(slot: number): boolean {
    return Atomics.compareExchange(jobStates, slot, QUEUED, CANCELLED) === QUEUED;
  }
  const handle: WorkerHandle = {
    send(message: ToWorker, transfer: Transferable[] = []) {
      if (message.type === "run") {
        for (const slot of message.slots) Atomics.store(jobStates, slot, QUEUED);
      }
      worker.postMessage(message, transfer);
    },
    withdraw,
    drop: withdraw,
    started: (slot) => Atomics.load(jobStates, slot) !== QUEUED,
    cancel(slot) {
      Atomics.store(jobStates, slot, CANCELLED);
      if (alive) worker.postMessage({ type: "cancel", slot } satisfies ToWorker);
      return false; // a thread cannot be stopped: it retires
    },
    keepAlive(on) {
      if (on === kept || !alive || refWorker === undefined) return;
      kept = on;
      refWorker.call(worker, on);
    },
    terminate() {
      alive = false;
      worker.terminate();
    },
    onMessage: () => {},
    onExit: () => {},
  };
  worker.onmessage = (event: MessageEvent<FromWorker>) => {
    const message = event.data;
    if (message.type === "exit") {
      exited({ code: message.code, signal: null, cause: new Error(message.reason) });
    } else if (alive) {
      handle.onMessage(message);
    }
  };
  worker.onerror = (event: ErrorEvent) => {
    event.preventDefault();
    exited({
      code: null,
      signal: null,
      cause: new Error(`uncaught in the worker: ${event.message}`),
    });
  };
  worker.onmessageerror = () => {
    exited({
      code: null,
      signal: null,
      cause: new Error("a message from the worker could not be read"),
    });
  };
  worker.postMessage(
    { type: "init", init: { ...init, jobStates: jobStates.buffer } } satisfies ToWorker,
  );
  return handle;
}

registerTransport("thread", {
  spawn: spawnThread,
  extraOptions: [],
  context: { transport: "thread" },
});
