--! include lib_sessions
-- Deregister a worker: requeue its claimed-not-running sessions, revoke its runtime tokens.
-- KEYS: worker hash, worker jtis zset, org workers zset, heartbeats zset.
-- ARGV: prefixes JSON, worker id, now (ms), jwt revoked prefix, leeway (s).
-- Returns the requeued session ids, or {-1} for an unknown worker.
local P = cjson.decode(ARGV[1])
local wid, now = ARGV[2], ARGV[3]
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local moved = requeue_worker(P, wid, now)
local nowms = tonumber(now)
local jtis = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #jtis, 2 do
  -- Keep the revocation until the token could no longer pass even with leeway.
  local ttl = math.ceil((tonumber(jtis[i + 1]) - nowms) / 1000) + tonumber(ARGV[5])
  if ttl > 0 then redis.call('SET', ARGV[4] .. jtis[i], '1', 'EX', ttl) end
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'status', 'deregistered', 'deregisteredAt', now)
redis.call('ZREM', KEYS[3], wid)
redis.call('ZREM', KEYS[4], wid)
return moved
