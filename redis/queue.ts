/**
 * `RedisQueue`: the `Queue` API over a Redis list, for producers and
 * consumers on many machines.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { QueueClosedError, TimeoutError } from "../errors.ts";
import { wholeNumber } from "../internal/options.ts";
import { checkTimeout, settledWithin, type WaitOptions } from "../internal/wait.ts";
import { itemFromBytes, itemToBytes } from "../queue/_ring.ts";
import { checkServerOptions, Connections, evalScript, type Link } from "./_connection.ts";

/** Options of a {@linkcode RedisQueue}. */
export interface RedisQueueOptions {
  /** The server, as `redis://host:port` (or `rediss://`, with a user and password if needed). */
  url: string;
  /** The queue's name: every handle with the same URL and name is the same queue. */
  name: string;
  /**
   * The most items this handle's puts leave in the queue; a put on a full
   * queue waits. Omit it (or pass `Infinity`) for no bound.
   */
  maxSize?: number;
}

/** The longest a blocking command waits before the get looks at its deadline and signal again. */
const SLICE_MS = 500;

/** How long a put remembers its id, so that a put retried after a dropped reply adds nothing. */
const PUT_ID_SECONDS = 3_600;

/** How long a get's hold on its pending list lasts beyond one blocking wait, unless renewed. */
const HOLD_GRACE_MS = 10_000;

/** How long `disconnect()` waits for the confirms still in the background. */
const CONFIRM_GRACE_MS = 5_000;

/**
 * Takes up to ARGV[1] items without waiting, through the connection's
 * pending list (KEYS[1]): the items a dropped reply left there, else the
 * oldest ones, moved there. The get holds its pending list until ARGV[2] ms
 * from now (KEYS[4], by the server's clock) and empties it once it has the
 * reply. First, the items of pending lists whose hold lapsed (their consumer
 * died between a take and its confirm) go back to the head of the queue, and
 * a mark tells a consumer that was only slow. A hold on anything but a
 * pending list of this queue (named ARGV[3]…; whoever can write to Redis can
 * add one) is dropped. Returns `{1, items}`, `{2}` when the queue is closed
 * and empty, `{0}` when it is only empty.
 */
const TAKE = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
for _, list in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 16)) do
  if list ~= KEYS[1] then
    if string.sub(list, 1, #ARGV[3]) == ARGV[3] then
      local moved = 0
      while true do
        local ok, item = pcall(redis.call, 'LMOVE', list, KEYS[2], 'RIGHT', 'LEFT')
        if not ok or not item then break end
        moved = moved + 1
      end
      if moved > 0 then redis.call('SET', list .. ':given-back', 1, 'EX', 3600) end
    end
    redis.call('ZREM', KEYS[4], list)
  end
end
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[2]), KEYS[1])
local held = redis.call('LRANGE', KEYS[1], 0, -1)
if #held > 0 then
  -- More than asked for (a wait sent again after a lost reply moved one more): the rest go back.
  while #held > tonumber(ARGV[1]) do
    redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
    held[#held] = nil
  end
  return {1, held}
end
for i = 1, tonumber(ARGV[1]) do
  local v = redis.call('LMOVE', KEYS[2], KEYS[1], 'LEFT', 'RIGHT')
  if not v then break end
  held[i] = v
end
if #held > 0 then return {1, held} end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('ZREM', KEYS[4], KEYS[1])
  return {2}
end
return {0}`;

/**
 * Lets go of a pending list (KEYS[1]) whose ARGV[1] items the caller has: 1
 * when they are the caller's (also for a confirm sent again after a lost
 * reply), 0 when they went back to the queue while the caller was slow (its
 * hold in KEYS[2] lapsed; KEYS[3] is the mark left then), 2 when the list
 * holds another count (a wait sent again after a lost reply moved one more):
 * the caller takes the whole list instead. A mark an earlier give-back left
 * (for a get that never confirmed: it was aborted) goes with the items, so
 * that this confirm, sent again, does not read it as its own.
 */
const CONFIRM = `
local held = redis.call('LLEN', KEYS[1])
if held > 0 and held ~= tonumber(ARGV[1]) then return 2 end
redis.call('ZREM', KEYS[2], KEYS[1])
if held > 0 then
  redis.call('DEL', KEYS[1], KEYS[3])
  return 1
end
if redis.call('DEL', KEYS[3]) == 1 then return 0 end
return 1`;

/** Puts the items of a pending list (KEYS[1]) back at the head of the queue (KEYS[2]), in order. */
const GIVE_BACK = `
while redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT') do end
redis.call('ZREM', KEYS[3], KEYS[1])
return 1`;

let takeMany: <T>(
  queue: RedisQueue<T>,
  max: number,
  confirmLater: boolean,
) => Promise<T[]>;

/**
 * Takes up to `max` items at once, waiting while the queue is empty (what a
 * `RedisPool` reads its results with). With `confirmLater`, the items are
 * returned before Redis lets go of them (the confirm goes in the background,
 * and the link's next get waits for it): one round trip fewer, for a reader
 * to whom an item seen twice (after a lost reply, or a hold that lapsed)
 * does no harm; bytes that are no item are then left out (they would fail
 * the whole batch). Private to the library.
 */
export function getBatch<T>(
  queue: RedisQueue<T>,
  max: number,
  confirmLater = false,
): Promise<T[]> {
  return takeMany(queue, max, confirmLater);
}

/**
 * Adds an item (ARGV[2]) unless the queue is closed (-1) or holds ARGV[1]
 * items (0); 1 when added, or when the put of id KEYS[3] already added it.
 */
const PUT = `
if redis.call('EXISTS', KEYS[3]) == 1 then return 1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local max = tonumber(ARGV[1])
if max > 0 and redis.call('LLEN', KEYS[1]) >= max then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('SET', KEYS[3], 1, 'EX', ARGV[3])
return 1`;

/**
 * A first-in, first-out queue in Redis, shared by every process that opens
 * it by the same URL and name, on any machine: the `Queue` API where every
 * method returns a promise (there are no `Sync` forms over a network). Items
 * are copied in with the same encodings as `Queue`; each is handed out once;
 * items wait in Redis, so they survive the death of any producer or
 * consumer. `close()` closes the queue for every handle; `disconnect()` (or
 * `await using`) releases this handle's connections.
 *
 * @example
 * ```ts ignore
 * import { RedisQueue } from "@parallel/core/redis";
 * await using queue = new RedisQueue<string>({ url: "redis://127.0.0.1:6379", name: "jobs" });
 * await queue.put("hello");
 * console.log(await queue.get({ timeout: 1_000 })); // "hello"
 * ```
 */
export class RedisQueue<T = unknown> implements AsyncIterable<T>, AsyncDisposable {
  /** The queue's name. */
  readonly name: string;
  /** The server's URL. */
  readonly url: string;
  /** The most items this handle's puts leave in the queue, `Infinity` for no bound. */
  readonly maxSize: number;
  readonly #keys: { items: string; closed: string; pending: string; holds: string; put: string };
  readonly #connections: Connections;
  readonly #label: string;
  /** Confirms still in flight, by link (see `getBatch`): the link's next get waits for its own. */
  readonly #confirming = new Map<Link, Promise<unknown>>();

  /**
   * Opens the queue (connecting on first use).
   *
   * @param options `url`, `name` and `maxSize`.
   * @throws {TypeError} When `url` or `name` is not a non-empty string, or an option is unknown.
   * @throws {RangeError} When `maxSize` is not a whole number >= 1.
   */
  constructor(options: RedisQueueOptions) {
    const where = "Cannot create RedisQueue";
    checkServerOptions(options, ["maxSize"], where);
    this.url = options.url;
    this.name = options.name;
    this.maxSize = options.maxSize === undefined || options.maxSize === Infinity
      ? Infinity
      : wholeNumber(options.maxSize, "maxSize", 1, where, 0x7fff_ffff);
    const prefix = `parallel:queue:{${this.name}}`;
    this.#keys = {
      items: `${prefix}:items`,
      closed: `${prefix}:closed`,
      pending: `${prefix}:pending:`,
      holds: `${prefix}:holds`,
      put: `${prefix}:put:`,
    };
    this.#label = `RedisQueue "${this.name}"`;
    this.#connections = new Connections(this.url, this.#label);
  }

  /**
   * Adds an item at the end, waiting while the queue holds `maxSize` items.
   *
   * @param item The item; it is copied in.
   * @param options `timeout` in milliseconds, and a `signal` to stop waiting.
   * @throws {QueueClosedError} When the queue is closed.
   * @throws {TimeoutError} When `timeout` passes while the queue is full.
   * @throws {SerializationError} When the item cannot be copied.
   */
  async put(item: T, options?: WaitOptions): Promise<void> {
    const timeout = checkTimeout(options?.timeout, `${this.#label}.put`);
    options?.signal?.throwIfAborted();
    const bytes = Buffer.from(itemToBytes(item));
    const id = crypto.randomUUID();
    const deadline = performance.now() + timeout;
    // Redis has no wait for room in a list: look again, less often as the wait goes on.
    for (let pause = 2;; pause = Math.min(pause * 2, 100)) {
      if (await this.#putOnce(id, bytes, "put()")) return;
      options?.signal?.throwIfAborted();
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new TimeoutError(`${this.#label}.put(): still full after ${timeout} ms`);
      }
      await sleep(Math.min(pause, left), options?.signal);
    }
  }

  /**
   * Adds an item if there is room now.
   *
   * @param item The item; it is copied in.
   * @returns `true` when it was added, `false` when the queue is full.
   * @throws {QueueClosedError} When the queue is closed.
   */
  async tryPut(item: T): Promise<boolean> {
    const bytes = Buffer.from(itemToBytes(item));
    return await this.#putOnce(crypto.randomUUID(), bytes, "tryPut()");
  }

  /** One attempt to add; run again with the same id if the connection drops. */
  async #putOnce(id: string, bytes: Buffer, method: string): Promise<boolean> {
    const max = String(this.maxSize === Infinity ? 0 : this.maxSize);
    const added = await this.#connections.main.run((client) =>
      evalScript(client, PUT, {
        keys: [this.#keys.items, this.#keys.closed, `${this.#keys.put}${id}`],
        arguments: [max, bytes, String(PUT_ID_SECONDS)],
      })
    ) as number;
    if (added === -1) throw new QueueClosedError(`${this.#label}.${method}: the queue is closed`);
    return added === 1;
  }

  /**
   * Removes and returns the oldest item, waiting while the queue is empty.
   *
   * @param options `timeout` in milliseconds, and a `signal` to stop waiting.
   * @returns The item.
   * @throws {QueueClosedError} When the queue is closed and empty.
   * @throws {TimeoutError} When `timeout` passes first.
   */
  async get(options?: WaitOptions): Promise<T> {
    return (await this.#getMany(1, options, "get", false))[0];
  }

  static {
    takeMany = (queue, max, confirmLater) => queue.#getMany(max, undefined, "get", confirmLater);
  }

  #getMany(
    max: number,
    options: WaitOptions | undefined,
    method: string,
    confirmLater: boolean,
  ): Promise<T[]> {
    const timeout = checkTimeout(options?.timeout, `${this.#label}.${method}`);
    const signal = options?.signal;
    signal?.throwIfAborted();
    const deadline = performance.now() + timeout;
    let abandoned = false;
    // From its confirm on, what the get took is its caller's, even if the signal fires.
    let confirming = false;
    const getting = this.#connections.blocking(this.#keys.pending, async ({ link, pending }) => {
      // What the last wait moved into the (then empty) pending list: no take needed for it.
      let moved: Uint8Array | undefined;
      await this.#confirming.get(link);
      for (;;) {
        if (abandoned) {
          // What the wait moved after the signal fired goes back to the head of the queue.
          if (moved !== undefined) await this.#giveBack(link, pending);
          throw new Error("abandoned");
        }
        const taken = moved !== undefined
          ? [moved]
          : await this.#take(link, pending, `${method}()`, max);
        moved = undefined;
        if (taken !== undefined) {
          if (abandoned) {
            await this.#giveBack(link, pending);
            throw new Error("abandoned");
          }
          if (confirmLater) {
            const confirming = this.#confirm(link, pending, taken).catch(() => {})
              .finally(() => this.#confirming.delete(link));
            this.#confirming.set(link, confirming);
            // Bytes that are no item (whoever can write to Redis) are left out, not the batch.
            return taken.flatMap((bytes) => {
              try {
                return [itemFromBytes(bytes)];
              } catch {
                return [];
              }
            }) as T[];
          }
          confirming = true;
          const items = await this.#confirm(link, pending, taken);
          confirming = false;
          if (items !== undefined) return items as T[];
          // They went back to the queue while this get was slow, or there is more to take.
          continue;
        }
        if (abandoned) throw new Error("abandoned");
        const left = deadline - performance.now();
        if (left <= 0) {
          throw new TimeoutError(`${this.#label}.${method}(): still empty after ${timeout} ms`);
        }
        // Wait for an item: it moves into the pending list, and the next take returns it.
        const slice = Math.min(left, SLICE_MS);
        moved = await link.run(
          (client) => client.blMove(this.#keys.items, pending, "LEFT", "RIGHT", slice / 1000),
          slice,
        ) as Uint8Array | null ?? undefined;
      }
    });
    if (signal === undefined) return getting;
    return new Promise<T[]>((resolve, reject) => {
      const onAbort = () => {
        // The get in flight puts back whatever it takes from now on, unless it is confirming.
        abandoned = true;
        if (!confirming) reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      getting.then(resolve, (error) => reject(abandoned ? signal.reason : error))
        .finally(() => signal.removeEventListener("abort", onAbort));
    });
  }

  /**
   * Removes and returns the oldest item if there is one now.
   *
   * @returns `{ value }` with the item, or `undefined` when the queue is empty.
   * @throws {QueueClosedError} When the queue is closed and empty.
   */
  async tryGet(): Promise<{ value: T } | undefined> {
    return await this.#connections.blocking(this.#keys.pending, async ({ link, pending }) => {
      for (;;) {
        const taken = await this.#take(link, pending, "tryGet()", 1);
        if (taken === undefined) return undefined;
        const items = await this.#confirm(link, pending, taken);
        if (items !== undefined) return { value: items[0] as T };
      }
    });
  }

  /**
   * One take of up to `max` items without waiting, into the connection's
   * pending list: their bytes, or `undefined` when the queue is empty.
   *
   * @throws {QueueClosedError} When the queue is closed and empty.
   */
  async #take(
    link: Link,
    pending: string,
    method: string,
    max: number,
  ): Promise<Uint8Array[] | undefined> {
    const [status, items] = await link.run((client) =>
      evalScript(client, TAKE, {
        keys: [pending, this.#keys.items, this.#keys.closed, this.#keys.holds],
        arguments: [String(max), String(SLICE_MS + HOLD_GRACE_MS), this.#keys.pending],
      })
    ) as [number, Uint8Array[]?];
    if (status === 2) {
      throw new QueueClosedError(`${this.#label}.${method}: the queue is closed and empty`);
    }
    return status === 1 ? items : undefined;
  }

  /**
   * Empties the pending list, then returns the taken items: they are the
   * caller's only once Redis has let go of them; `undefined` when they went
   * back to the queue meanwhile, or when the list holds more than `taken`
   * (the caller then takes again). The pending list holds only them, so a
   * confirm sent again after a dropped reply removes nothing else.
   */
  async #confirm(
    link: Link,
    pending: string,
    taken: Uint8Array[],
  ): Promise<unknown[] | undefined> {
    const mine = await link.run((client) =>
      evalScript(client, CONFIRM, {
        keys: [pending, this.#keys.holds, `${pending}:given-back`],
        arguments: [String(taken.length)],
      })
    );
    return mine === 1 ? taken.map(itemFromBytes) : undefined;
  }

  /** Puts the items a cancelled get took back at the head of the queue, where they were. */
  async #giveBack(link: Link, pending: string): Promise<void> {
    await link.run((client) =>
      evalScript(client, GIVE_BACK, {
        keys: [pending, this.#keys.items, this.#keys.holds],
        arguments: [],
      })
    );
  }

  /** How many items are in the queue now. */
  async size(): Promise<number> {
    return await this.#connections.main.run((client) => client.lLen(this.#keys.items));
  }

  /**
   * Closes the queue for every handle: later puts fail with
   * `QueueClosedError`; gets go on until the queue is empty, then fail the
   * same way (a get waiting then sees it within half a second), and
   * iteration ends. Calling it again does nothing.
   */
  async close(): Promise<void> {
    await this.#connections.main.run((client) => client.set(this.#keys.closed, "1"));
  }

  /** Whether `disconnect()` was called. */
  get disconnected(): boolean {
    return this.#connections.closed;
  }

  /**
   * Releases this handle's connections (once its background confirms are
   * done, or after 5 s: a server that is gone must not hold it up); the queue
   * and its items stay in Redis.
   */
  async disconnect(): Promise<void> {
    // A confirm that cannot finish leaves its items held: they go back once the hold lapses.
    await settledWithin(Promise.all(this.#confirming.values()), CONFIRM_GRACE_MS);
    await this.#connections.close();
  }

  /** Releases this handle's connections, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.disconnect();
  }

  /**
   * Iterates over the items as they arrive, ending once the queue is closed
   * and empty.
   *
   * @returns An async iterator of the items.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for (;;) {
      try {
        yield await this.get();
      } catch (error) {
        if (error instanceof QueueClosedError) return;
        throw error;
      }
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener("abort", aborted);
      resolve();
    }
    function aborted() {
      clearTimeout(timer);
      reject(signal!.reason);
    }
    signal?.addEventListener("abort", aborted, { once: true });
  });
}
