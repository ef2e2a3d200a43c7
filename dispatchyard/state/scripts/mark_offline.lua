--! include lib_sessions
--! keys hosts_offline
--! machines host
-- Mark a host offline if it is still silent, and requeue its claimed-not-running sessions.
-- KEYS: host hash, heartbeats zset.
-- ARGV: host id, now, cutoff (ms), the offline state.
-- Returns the requeued session ids, or false when it was not marked: it heartbeated in the
-- meantime, or HOST does not let it go offline (unknown, deregistered; then it also leaves
-- the sweep's set, having nothing to sweep).
local host_key, heartbeats_key = KEYS[1], KEYS[2]
local host_id, now, cutoff, offline = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]

local last = redis.call('ZSCORE', heartbeats_key, host_id)
if not last or tonumber(last) > cutoff then return false end
redis.call('ZREM', heartbeats_key, host_id)
local status = redis.call('HGET', host_key, 'status')
if not may_move(HOST, status, offline) then return false end
redis.call('HSET', host_key, 'status', offline, 'offlineAt', now)
redis.call('ZADD', K.hosts_offline, last, host_id)
return requeue_host(host_id, now)
