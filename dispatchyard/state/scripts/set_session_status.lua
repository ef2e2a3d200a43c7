--! include lib_common
--! keys session_status_counts final_at
--! machines session
-- Move a session along SESSION (staying is a repeated report). A terminal status stamps
-- `finishedAt`, takes the session out of its host's set and files it in the retention index.
-- KEYS: session record, host sessions set.
-- ARGV: host id, new status, now, extra fields JSON.
-- Returns the record (flat field/value list); refuses not_found, forbidden (another host's) or
-- conflict (SESSION forbids the move; `current` says where it is).
local session_key, host_sessions_key = KEYS[1], KEYS[2]
local host_id, target, now, extra = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local f = redis.call('HMGET', session_key, 'status', 'workerId', 'startedAt', 'id')
local current, holder, started_at, session_id = f[1], f[2], f[3], f[4]
if not current then return refuse('not_found', 'Session not found') end
if holder ~= host_id then return refuse('forbidden', 'Session belongs to another worker') end
if current ~= target and not may_move(SESSION, current, target) then
  return refuse('conflict', 'Illegal status change: ' .. current .. ' -> ' .. target,
    {current = current})
end
local fields = cjson.decode(extra)
fields['status'] = target
fields['updatedAt'] = now
if target == 'running' and (not started_at or started_at == '') then fields['startedAt'] = now end
if next(SESSION[target]) == nil then
  if current ~= target then
    fields['finishedAt'] = now
    redis.call('ZADD', K.final_at('sessions'), now, session_id)
  end
  redis.call('SREM', host_sessions_key, session_id)
end
hset_table(session_key, fields)
if current ~= target then
  redis.call('HINCRBY', K.session_status_counts, current, -1)
  redis.call('HINCRBY', K.session_status_counts, target, 1)
end
return redis.call('HGETALL', session_key)
