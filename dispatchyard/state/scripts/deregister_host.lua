--! include lib_common
--! include lib_sessions
-- Deregister a host: requeue its claimed-not-running sessions, revoke its runtime tokens.
-- KEYS: host hash, host jtis zset, org hosts zset, heartbeats zset.
-- ARGV: prefixes JSON, host id, now (ms), jwt revoked prefix, leeway (s), the deregistered
--       state, the states it may be reached from (JSON list).
-- Returns the requeued session ids, or {-1} (nothing written) for an unknown host or one whose
-- state forbids the move (already deregistered).
local P = cjson.decode(ARGV[1])
local wid, now = ARGV[2], ARGV[3]
local current = redis.call('HGET', KEYS[1], 'status')
if not current or not may_move(ARGV[7], current) then return {-1} end
local moved = requeue_host(P, wid, now)
local nowms = tonumber(now)
local jtis = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #jtis, 2 do
  -- Keep the revocation until the token could no longer pass even with leeway.
  local ttl = math.ceil((tonumber(jtis[i + 1]) - nowms) / 1000) + tonumber(ARGV[5])
  if ttl > 0 then redis.call('SET', ARGV[4] .. jtis[i], '1', 'EX', ttl) end
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'status', ARGV[6], 'deregisteredAt', now)
redis.call('ZREM', KEYS[3], wid)
redis.call('ZREM', KEYS[4], wid)
return moved
