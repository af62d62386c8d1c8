/**
 * A pool's timeline (`trace: true`): when each task was queued, started and
 * settled, and on which worker, as Chrome trace events — the JSON that
 * Perfetto (ui.perfetto.dev) and `chrome://tracing` open, one lane per
 * worker and one for the queue.
 *
 * @module
 */

/** One Chrome trace event (the fields this library writes). */
export interface TraceEvent {
  /** What happened: the task's function, or a lane's name for metadata. */
  name: string;
  /** `"X"`: a span with a duration; `"M"`: metadata (lane and process names). */
  ph: "X" | "M";
  /** Start, in microseconds since the program started. */
  ts: number;
  /** Duration in microseconds (spans only). */
  dur?: number;
  /** Always 1: the pool is one "process" of the trace. */
  pid: number;
  /** The lane: 0 for the queue, then one per worker. */
  tid: number;
  /** Details: the task's id and outcome, or the lane's name. */
  args?: Record<string, unknown>;
}

/** What `pool.trace()` returns: Chrome's JSON object format. */
export interface Trace {
  /** The events, lane names first. */
  traceEvents: TraceEvent[];
  /** How viewers show times. */
  displayTimeUnit: "ms";
}

/** How a task ended, as the trace shows it. */
export type TraceOutcome = "returned" | "failed" | "cancelled";

const micros = (ms: number) => Math.round(ms * 1000);

/** Collects a pool's task spans; the scheduler calls it, `pool.trace()` reads it. */
export class TraceRecorder {
  readonly #label: string;
  readonly #lanes = new Map<string, number>();
  readonly #spans: TraceEvent[] = [];

  constructor(label: string) {
    this.#label = label;
  }

  /**
   * Records a settled task: its wait in the queue lane, and its run on its
   * worker's lane when it started.
   */
  settled(
    task: { id: number; fn: string; queuedAt: number; startedAt?: number; worker?: string },
    outcome: TraceOutcome,
    now: number,
  ): void {
    const waitedUntil = task.startedAt ?? now;
    this.#spans.push({
      name: `${task.fn} (waiting)`,
      ph: "X",
      ts: micros(task.queuedAt),
      dur: micros(waitedUntil - task.queuedAt),
      pid: 1,
      tid: 0,
      args: { task: task.id, outcome: task.startedAt === undefined ? outcome : "started" },
    });
    if (task.startedAt === undefined || task.worker === undefined) return;
    let lane = this.#lanes.get(task.worker);
    if (lane === undefined) {
      lane = this.#lanes.size + 1;
      this.#lanes.set(task.worker, lane);
    }
    this.#spans.push({
      name: task.fn,
      ph: "X",
      ts: micros(task.startedAt),
      dur: micros(now - task.startedAt),
      pid: 1,
      tid: lane,
      args: { task: task.id, outcome, waitedMs: task.startedAt - task.queuedAt },
    });
  }

  /** The trace so far. */
  trace(): Trace {
    const names: TraceEvent[] = [
      { name: "process_name", ph: "M", ts: 0, pid: 1, tid: 0, args: { name: this.#label } },
      { name: "thread_name", ph: "M", ts: 0, pid: 1, tid: 0, args: { name: "queue" } },
    ];
    for (const [worker, lane] of this.#lanes) {
      names.push({
        name: "thread_name",
        ph: "M",
        ts: 0,
        pid: 1,
        tid: lane,
        args: { name: worker },
      });
    }
    return { traceEvents: [...names, ...this.#spans], displayTimeUnit: "ms" };
  }
}
