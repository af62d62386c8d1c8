/**
 * What a `RedisPool` and the workers of `serveRedisPool` share in Redis: the
 * keys, the scripts that change them, and the form of a job and a result.
 *
 * ```text
 *   parallel:pool:{name}:tasks           list   job items no worker has taken, oldest first
 *   parallel:pool:{name}:job:<id>        hash   item (the job's list item), client,
 *                                               maxAttempts, attempts (starts that ended
 *                                               with their worker's death), cancelled
 *   parallel:pool:{name}:submitted:<id>  string the job was submitted (for an hour)
 *   parallel:pool:{name}:workers         set    ids of workers that serve the pool
 *   parallel:pool:{name}:alive:<worker>  string there while the worker lives (it renews it)
 *   parallel:pool:{name}:running:<worker> list  the job items the worker took
 *   parallel:pool:{name}:cancel:<worker> list   ids the worker should cancel
 *   results: a RedisQueue per submitter, named pool:{name}:results:<client>
 * ```
 *
 * A job's list item carries all a worker needs (see {@linkcode jobItem}), so
 * a worker takes a job in one step: a move of its item from `tasks` to its
 * `running` list, which a blocking move can do as the job arrives. It
 * finishes jobs with one script that removes their items from `running`,
 * puts the results in the submitters' queues, deletes the jobs and takes the
 * next: a result is given once, and only by the worker that still holds the
 * job. A job whose take reply was lost with a dropped connection stays in the
 * worker's `running` list; the worker adopts it once it has seen it there,
 * unknown, twice in a row. A worker whose `alive` key has expired is dead:
 * any worker or submitter moves its jobs back to the front of `tasks`, or,
 * once a job has been started `maxAttempts` times, answers it with a crash.
 *
 * @module
 */

/** The keys of one pool. */
export function poolKeys(name: string) {
  const prefix = `parallel:pool:{${name}}:`;
  return {
    tasks: `${prefix}tasks`,
    job: (id: string) => `${prefix}job:${id}`,
    submitted: (id: string) => `${prefix}submitted:${id}`,
    workers: `${prefix}workers`,
    alive: (worker: string) => `${prefix}alive:${worker}`,
    running: (worker: string) => `${prefix}running:${worker}`,
    cancel: (worker: string) => `${prefix}cancel:${worker}`,
    /** The RedisQueue name of a submitter's results. */
    results: (client: string) => `pool:${name}:results:${client}`,
    /** The key of that queue's items (see `RedisQueue`). */
    resultItems: (client: string) => `parallel:queue:{pool:${name}:results:${client}}:items`,
  };
}

/** Result statuses. */
export const RETURNED = 0;
/** See {@linkcode RETURNED}. */
export const THREW = 1;

/** A job as it waits in a list: what a worker needs to run it and to answer it. */
export interface JobItem {
  readonly id: string;
  readonly client: string;
  /** Milliseconds the job may run, 0 for no limit. */
  readonly timeout: number;
  readonly stalledAfter: number;
  /** The job's `node:v8` body: `{ fn, mode, args }`. */
  readonly body: Uint8Array;
}

const NEWLINE = 0x0a;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A job's list item: `id`, `client`, `timeout` and `stalledAfter` on lines of their own, then the body. */
export function jobItem(job: JobItem): Uint8Array {
  const head = encoder.encode(`${job.id}\n${job.client}\n${job.timeout}\n${job.stalledAfter}\n`);
  const item = new Uint8Array(head.byteLength + job.body.byteLength);
  item.set(head);
  item.set(job.body, head.byteLength);
  return item;
}

/** Reads a job's list item; `undefined` for anything else (whoever can write to Redis). */
export function readJobItem(item: Uint8Array): JobItem | undefined {
  let end = -1;
  for (let line = 0; line < 4; line++) {
    end = item.indexOf(NEWLINE, end + 1);
    if (end < 0) return undefined;
  }
  const [id, client, timeout, stalledAfter] = decoder.decode(item.subarray(0, end)).split("\n");
  if (id === "") return undefined;
  return {
    id,
    client,
    timeout: Number(timeout) || 0,
    stalledAfter: Number(stalledAfter) || 0,
    body: item.subarray(end + 1),
  };
}

/** How long Redis remembers a submitted job's id, so that a submit sent again adds nothing. */
export const SUBMITTED_SECONDS = 3_600;

/**
 * Adds a job unless its id was submitted before (a submit sent again after a
 * lost reply, even once the job has finished or been withdrawn). KEYS: job,
 * tasks, the id's submitted mark. ARGV: item, client, maxAttempts, how long
 * the mark lasts in seconds.
 */
export const SUBMIT = `
if redis.call('SET', KEYS[3], 1, 'NX', 'EX', ARGV[4]) == false then return 0 end
redis.call('HSET', KEYS[1], 'item', ARGV[1], 'client', ARGV[2], 'maxAttempts', ARGV[3],
  'attempts', 0)
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1`;

/**
 * Takes back a job no worker has taken: `{1}` when it did (the job is
 * gone); else `{0, worker}` with the worker that holds it, or `{0}` when
 * none does (it has finished). A listed worker whose running key is not a
 * list (whoever can write to Redis can add one) is passed over. KEYS: tasks,
 * job, workers. ARGV: the running key prefix.
 */
export const WITHDRAW = `
local item = redis.call('HGET', KEYS[2], 'item')
if not item then return {0} end
if redis.call('LREM', KEYS[1], 1, item) == 1 then
  redis.call('DEL', KEYS[2])
  return {1}
end
-- Should its worker be dead, the recovery drops it instead of running it again.
redis.call('HSET', KEYS[2], 'cancelled', 1)
for _, worker in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local ok, at = pcall(redis.call, 'LPOS', ARGV[1] .. worker, item)
  if ok and at then return {0, worker} end
end
return {0}`;

/**
 * Finishes jobs and takes the next ones, in one round trip (as BullMQ's
 * `moveToFinished` does, for a batch). Each result is given once, and only if
 * this worker still holds its job (its item in `running`); then up to
 * ARGV[4] next job items move from `tasks` to `running` and are returned.
 * A job or results key of the wrong type (a forged job) fails no other job
 * of the batch. KEYS: tasks, running. ARGV: job key prefix, results items
 * key prefix and suffix, how many to take, then (id, client, result item)
 * per finished job.
 */
export const FINISH_AND_TAKE = `
for i = 5, #ARGV, 3 do
  local job = ARGV[1] .. ARGV[i]
  local ok, item = pcall(redis.call, 'HGET', job, 'item')
  if ok and item and redis.call('LREM', KEYS[2], 1, item) == 1 then
    redis.call('DEL', job)
    local results = ARGV[2] .. ARGV[i + 1] .. ARGV[3]
    redis.pcall('RPUSH', results, ARGV[i + 2])
    -- A submitter that died reads them no more: they go after a day.
    redis.call('PEXPIRE', results, 86400000)
  end
end
local taken = {}
for i = 1, tonumber(ARGV[4]) do
  local item = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
  if not item then break end
  taken[i] = item
end
return taken`;

/** The ids of the job items in a worker's `running` list (KEYS[1]): what a worker checks for orphans. */
export const RUNNING_IDS = `
local ids = {}
for _, item in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local cut = string.find(item, '\\n', 1, true)
  ids[#ids + 1] = cut and string.sub(item, 1, cut - 1) or item
end
return ids`;

/** Removes from a worker's `running` list (KEYS[1]) the items of job ARGV[1], or items that are not jobs, so named. */
export const DROP_RUNNING = `
for _, item in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local cut = string.find(item, '\\n', 1, true)
  if (cut and string.sub(item, 1, cut - 1) or item) == ARGV[1] then
    redis.call('LREM', KEYS[1], 1, item)
  end
end
return 1`;

/**
 * A worker leaves: the jobs still in its `running` list (orphans it never ran,
 * results it could not give) go back to the front of `tasks`, uncounted, but
 * a cancelled one is dropped (as RECOVER drops it); its keys go. KEYS:
 * running, tasks, workers, alive, cancel. ARGV: worker, the job key prefix.
 */
export const LEAVE = `
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i = #items, 1, -1 do
  local item = items[i]
  local cut = string.find(item, '\\n', 1, true)
  local job = cut and ARGV[2] .. string.sub(item, 1, cut - 1)
  local ok, cancelled = false, false
  if job then ok, cancelled = pcall(redis.call, 'HGET', job, 'cancelled') end
  if ok and cancelled then
    redis.call('DEL', job)
  else
    redis.call('LPUSH', KEYS[2], item)
  end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[4], KEYS[5])
return 1`;

/**
 * Recovers the jobs of a worker whose `alive` key has expired: each counts
 * the start that ended with its worker, then goes back to the front of
 * `tasks`, or is answered with a crash once it has been started
 * `maxAttempts` times; a cancelled one is dropped. The worker's lists go. Returns how many jobs it handled, -1 if the worker is
 * alive. KEYS: alive, running, tasks, workers, cancel. ARGV: worker, the job key
 * prefix, the results items key prefix, the results items key suffix.
 */
export const RECOVER = `
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local items = redis.call('LRANGE', KEYS[2], 0, -1)
for i = #items, 1, -1 do
  local item = items[i]
  local cut = string.find(item, '\\n', 1, true)
  local id = cut and string.sub(item, 1, cut - 1) or item
  local job = ARGV[2] .. id
  local ok, fields = pcall(redis.call, 'HMGET', job, 'attempts', 'maxAttempts', 'client',
    'cancelled')
  if cut and ok and fields[4] then
    redis.call('DEL', job)
  elseif cut and ok and fields[1] then
    -- Fields that are not numbers (a job written by someone else) count as its last attempt.
    local attempts = (tonumber(fields[1]) or math.huge) + 1
    local most = tonumber(fields[2]) or 0
    if attempts >= most then
      local text = cjson.encode({ id = id, crashed = 'its worker died while running it, ' ..
        tostring(attempts) .. ' time(s) (maxAttempts: ' .. tostring(most) .. ')' })
      local results = ARGV[3] .. (fields[3] or '') .. ARGV[4]
      redis.pcall('RPUSH', results, string.char(7) .. text)
      redis.pcall('PEXPIRE', results, 86400000)
      redis.call('DEL', job)
    else
      redis.call('HSET', job, 'attempts', attempts)
      redis.call('LPUSH', KEYS[3], item)
    end
  end
end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('DEL', KEYS[5])
return #items`;
