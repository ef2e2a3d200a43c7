--! include lib_common
--! include lib_sessions
-- Mark a host offline if it is still silent, and requeue its claimed-not-running sessions.
-- KEYS: host hash, heartbeats zset.
-- ARGV: prefixes JSON, host id, now, cutoff (ms), the offline state, the states it may be
--       reached from (JSON list).
-- Returns the requeued session ids; {} when the host's state forbids the move (unknown,
-- deregistered); {-1} when the host heartbeated in the meantime.
local P = cjson.decode(ARGV[1])
local wid = ARGV[2]
local last = redis.call('ZSCORE', KEYS[2], wid)
if not last or tonumber(last) > tonumber(ARGV[4]) then return {-1} end
-- Out of the sweep's set either way: a host that may not go offline has nothing to sweep.
redis.call('ZREM', KEYS[2], wid)
local status = redis.call('HGET', KEYS[1], 'status')
if not status or not may_move(ARGV[6], status) then return {} end
redis.call('HSET', KEYS[1], 'status', ARGV[5], 'offlineAt', ARGV[3])
return requeue_host(P, wid, ARGV[3])
