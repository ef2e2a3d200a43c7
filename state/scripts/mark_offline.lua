--! include lib_sessions
-- Mark a host offline if it is still silent, and requeue its claimed-not-running sessions.
-- KEYS: worker hash, heartbeats zset. ARGV: prefixes JSON, worker id, now, cutoff (ms).
-- Returns the requeued session ids, or {-1} when the host heartbeated in the meantime.
local P = cjson.decode(ARGV[1])
local wid = ARGV[2]
local last = redis.call('ZSCORE', KEYS[2], wid)
if not last or tonumber(last) > tonumber(ARGV[4]) then return {-1} end
redis.call('ZREM', KEYS[2], wid)
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'deregistered' then return {} end
redis.call('HSET', KEYS[1], 'status', 'offline', 'offlineAt', ARGV[3])
return requeue_worker(P, wid, ARGV[3])
