/**
 * What a child process sends its parent is untrusted input: a task shares
 * its realm with the library's code in the child, so it can patch the
 * prototypes that code uses, import its modules and forge any message. The
 * parent checks each message against what it gave that child before acting
 * on it; the broker checks calls the same way (`internal/broker.ts`).
 *
 * A child may send, in this order: the broker's calls and aborts at any time;
 * `init-failed` or `ready` once; then `started` and `done` only for tasks it
 * was given and has not answered, each started once and answered once, and
 * answered "skipped" only if the parent cancelled it before it started.
 * Anything else is a {@linkcode ChildViolation}, and the transport ends that
 * child.
 *
 * @module
 */

import { type AbortMessage, type CallMessage, ChildViolation } from "../internal/broker.ts";
import { type DoneMessage, FAILED, type FromWorker, OK, SKIPPED } from "../internal/protocol.ts";

/** A message from a child, once checked. */
export type FromChild = FromWorker | CallMessage | AbortMessage;

/** A checked result batch, with the indexes of the values that hold handles to revive. */
export interface CheckedDone extends DoneMessage {
  readonly handles: number[];
}

/** What the parent gave one child, to check what comes back against. */
export class ChildLedger {
  /** The most jobs the child may hold: no batch of results is longer. */
  readonly #capacity: number;
  #ready = false;
  /** Slots of the tasks sent to the child and not yet answered. */
  readonly #given = new Set<number>();
  /** Those of them the child said it started. */
  readonly #started = new Set<number>();
  /** Those of them the parent cancelled before the child said it started them. */
  readonly #dropped = new Set<number>();

  /** @param capacity The most jobs the child may hold at once. */
  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** The parent sent the child the tasks in `slots`. */
  give(slots: readonly number[]): void {
    for (const slot of slots) this.#given.add(slot);
  }

  /** Whether the child said it started the task in `slot` (and has not answered it). */
  hasStarted(slot: number): boolean {
    return this.#started.has(slot);
  }

  /**
   * The parent cancels the task in `slot` if the child has not said it
   * started it: the child may then answer it "skipped". Returns whether it did.
   */
  drop(slot: number): boolean {
    if (!this.#given.has(slot) || this.#started.has(slot)) return false;
    this.#dropped.add(slot);
    return true;
  }

  /** Checks a message from the child; returns it, or throws a {@linkcode ChildViolation}. */
  check(message: unknown): FromChild | CheckedDone {
    if (!isRecord(message) || typeof message.type !== "string") {
      throw new ChildViolation("a message that is not an object with a type");
    }
    switch (message.type) {
      case "call":
      case "abort":
        return message as unknown as CallMessage | AbortMessage;
      case "ready":
      case "init-failed":
        if (this.#ready) throw new ChildViolation(`"${message.type}" after it was ready`);
        this.#ready = true;
        return message as unknown as FromWorker;
      case "started":
        this.#checkReady("started");
        if (!this.#given.has(message.slot as number) || this.#started.has(message.slot as number)) {
          throw new ChildViolation(
            `a start for a task it was not given, or had started (slot ${
              typeof message.slot === "number" ? message.slot : typeof message.slot
            })`,
          );
        }
        this.#started.add(message.slot as number);
        return message as unknown as FromWorker;
      case "done":
        this.#checkReady("done");
        return this.#checkDone(message);
      default:
        throw new ChildViolation(
          `an unknown message (type ${JSON.stringify(message.type.slice(0, 40))})`,
        );
    }
  }

  #checkReady(type: string): void {
    if (!this.#ready) throw new ChildViolation(`"${type}" before it was ready`);
  }

  #checkDone(message: Record<string, unknown>): CheckedDone {
    const { slots, statuses, values, modules, busyMs } = message;
    if (
      !Array.isArray(slots) || !Array.isArray(statuses) || !Array.isArray(values) ||
      slots.length > this.#capacity || statuses.length !== slots.length ||
      values.length !== slots.length ||
      typeof busyMs !== "number" || !(busyMs >= 0) || busyMs === Infinity ||
      (modules !== undefined && !isRecord(modules))
    ) {
      throw new ChildViolation("a malformed result message");
    }
    const handles: number[] = [];
    for (let i = 0; i < slots.length; i++) {
      const status = statuses[i];
      // SKIPPED answers a cancellation that arrived before the task started.
      const skipped = status === SKIPPED && this.#dropped.has(slots[i]) &&
        !this.#started.has(slots[i]);
      if (status !== OK && status !== FAILED && !skipped) {
        throw new ChildViolation(
          status === SKIPPED
            ? `a task answered as skipped that it had started or was not asked to skip (slot ${
              typeof slots[i] === "number" ? slots[i] : typeof slots[i]
            })`
            : `a result of unknown status ${typeof status === "number" ? status : typeof status}`,
        );
      }
      if (!this.#given.delete(slots[i])) {
        throw new ChildViolation(
          `a result for a task it was not given, or had answered (slot ${
            typeof slots[i] === "number" ? slots[i] : typeof slots[i]
          })`,
        );
      }
      this.#started.delete(slots[i]);
      this.#dropped.delete(slots[i]);
      // A child names the values that hold handles; what it names to import is ignored.
      if (status === OK && modules !== undefined && Object.hasOwn(modules, i)) handles.push(i);
    }
    return { type: "done", slots, statuses, values, modules: {}, busyMs, handles };
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
