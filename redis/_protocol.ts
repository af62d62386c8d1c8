/**
 * What a `RedisPool` and the workers of `serveRedisPool` share in Redis: the
 * keys, the scripts that change them, and the form of a job and a result.
 *
 * ```text
 *   parallel:pool:{name}:tasks           list   ids of jobs no worker has taken, oldest first
 *   parallel:pool:{name}:job:<id>        hash   body (node:v8 {fn, mode, args}), client,
 *                                               timeout, maxAttempts, stalledAfter, attempts,
 *                                               worker (once taken)
 *   parallel:pool:{name}:workers         set    ids of workers that serve the pool
 *   parallel:pool:{name}:alive:<worker>  string there while the worker lives (it renews it)
 *   parallel:pool:{name}:running:<worker> list  ids of the jobs the worker took
 *   parallel:pool:{name}:cancel:<worker> list   ids the worker should cancel
 *   results: a RedisQueue per submitter, named pool:{name}:results:<client>
 * ```
 *
 * A worker takes a job by moving its id from `tasks` to its `running` list,
 * and finishes it with one script that removes the id from `running`, puts
 * the result in the submitter's queue, deletes the job and takes the next:
 * a result is given once, and only by the worker that still holds the job.
 * A job whose take reply was lost with a dropped connection stays in the
 * worker's `running` list; the worker adopts it once it has seen it there,
 * unknown, twice in a row. A worker whose
 * `alive` key has expired is dead: any worker or submitter moves its jobs
 * back to the front of `tasks`, or, once a job has been taken `maxAttempts`
 * times, answers it with a crash.
 *
 * @module
 */

/** The keys of one pool. */
export function poolKeys(name: string) {
  const prefix = `parallel:pool:{${name}}:`;
  return {
    tasks: `${prefix}tasks`,
    job: (id: string) => `${prefix}job:${id}`,
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

/**
 * Adds a job unless it is there already (a submit sent again after a lost
 * reply). KEYS: job, tasks. ARGV: id, body, client, timeout, maxAttempts,
 * stalledAfter.
 */
export const SUBMIT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'body', ARGV[2], 'client', ARGV[3], 'timeout', ARGV[4],
  'maxAttempts', ARGV[5], 'stalledAfter', ARGV[6], 'attempts', 0)
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1`;

/**
 * Takes back a job no worker has taken: 1 when it did (the job is gone), 0
 * when a worker has it; then returns that worker's id as well.
 * KEYS: tasks, job. ARGV: id.
 */
export const WITHDRAW = `
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('DEL', KEYS[2])
  return {1}
end
return {0, redis.call('HGET', KEYS[2], 'worker')}`;

/**
 * Marks a taken job as this worker's and counts the attempt; returns the
 * job's fields, or nothing when the job is gone (withdrawn meanwhile).
 * KEYS: job, running. ARGV: id, worker.
 */
export const CLAIM = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('LREM', KEYS[2], 1, ARGV[1])
  return false
end
redis.call('HSET', KEYS[1], 'worker', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return redis.call('HGETALL', KEYS[1])`;

/**
 * Finishes jobs and takes the next ones, in one round trip (as BullMQ's
 * `moveToFinished` does, for a batch). Each result is given once, and only if
 * this worker still holds its job (its id in `running`); then up to ARGV[5]
 * next jobs' ids move from `tasks` to `running`, each marked this worker's
 * and its attempt counted; returns `{{id, fields}, …}`.
 * KEYS: tasks, running. ARGV: worker, job key prefix, results items key
 * prefix and suffix, how many to take, then (id, client, result item) per
 * finished job.
 */
export const FINISH_AND_TAKE = `
for i = 6, #ARGV, 3 do
  if redis.call('LREM', KEYS[2], 1, ARGV[i]) == 1 then
    redis.call('DEL', ARGV[2] .. ARGV[i])
    redis.call('RPUSH', ARGV[3] .. ARGV[i + 1] .. ARGV[4], ARGV[i + 2])
  end
end
local taken = {}
while #taken < tonumber(ARGV[5]) do
  local id = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
  if not id then break end
  local job = ARGV[2] .. id
  if redis.call('EXISTS', job) == 1 then
    redis.call('HSET', job, 'worker', ARGV[1])
    redis.call('HINCRBY', job, 'attempts', 1)
    taken[#taken + 1] = {id, redis.call('HGETALL', job)}
  else
    redis.call('LREM', KEYS[2], 1, id)
  end
end
return taken`;

/**
 * Recovers the jobs of a worker whose `alive` key has expired: each goes back
 * to the front of `tasks`, or is answered with a crash once it has been taken
 * `maxAttempts` times. Returns how many jobs it handled, -1 if the worker is
 * alive. KEYS: alive, running, tasks, workers. ARGV: worker, the job key
 * prefix, the results items key prefix, the results items key suffix.
 */
export const RECOVER = `
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local ids = redis.call('LRANGE', KEYS[2], 0, -1)
for i = #ids, 1, -1 do
  local id = ids[i]
  local job = ARGV[2] .. id
  local ok, fields = pcall(redis.call, 'HMGET', job, 'attempts', 'maxAttempts', 'client')
  if ok and fields[1] then
    -- Fields that are not numbers (a job written by someone else) count as its last attempt.
    local attempts = tonumber(fields[1]) or 0
    local most = tonumber(fields[2]) or 0
    fields[1] = tostring(attempts)
    fields[2] = tostring(most)
    fields[3] = fields[3] or ''
    if attempts >= most then
      local text = cjson.encode({ id = id, crashed = 'its worker died while running it, ' ..
        fields[1] .. ' time(s) (maxAttempts: ' .. fields[2] .. ')' })
      redis.pcall('RPUSH', ARGV[3] .. fields[3] .. ARGV[4], string.char(7) .. text)
      redis.call('DEL', job)
    else
      redis.call('HDEL', job, 'worker')
      redis.call('LPUSH', KEYS[3], id)
    end
  end
end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[4], ARGV[1])
return #ids`;
