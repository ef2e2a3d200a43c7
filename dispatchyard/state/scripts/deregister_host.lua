--! include lib_sessions
--! keys jwt_revoked final_at hosts_offline
--! machines host
-- Deregister a host: requeue its claimed-not-running sessions, revoke its runtime tokens, file
-- it in the retention index (a deregistered host is final until it registers again).
-- KEYS: host hash, host jtis zset, org hosts zset, heartbeats zset.
-- ARGV: host id, now (ms), leeway (s), the deregistered state.
-- Returns the requeued session ids; refuses not_found for an unknown host or one HOST does
-- not let move (already deregistered).
local host_key, jtis_key, org_hosts_key, heartbeats_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local host_id, now, leeway_s, deregistered = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]

local current = redis.call('HGET', host_key, 'status')
if not may_move(HOST, current, deregistered) then
  return refuse('not_found', 'Worker not found')
end
local moved = requeue_host(host_id, now)
local now_ms = tonumber(now)
local jtis = redis.call('ZRANGE', jtis_key, 0, -1, 'WITHSCORES')
for i = 1, #jtis, 2 do
  -- Keep the revocation until the token could no longer pass even with leeway.
  local ttl = math.ceil((tonumber(jtis[i + 1]) - now_ms) / 1000) + leeway_s
  if ttl > 0 then redis.call('SET', K.jwt_revoked(jtis[i]), '1', 'EX', ttl) end
end
redis.call('DEL', jtis_key)
redis.call('HSET', host_key, 'status', deregistered, 'deregisteredAt', now)
redis.call('ZREM', org_hosts_key, host_id)
redis.call('ZREM', heartbeats_key, host_id)
redis.call('ZREM', K.hosts_offline, host_id)
redis.call('ZADD', K.final_at('hosts'), now, host_id)
return moved
