-- Renew the connection keys shim process `node` holds (its presence heartbeat).
-- KEYS: the connection keys of the peers whose sockets it holds.
-- ARGV: node, ttl ms.
-- Returns the indexes (1-based) of the keys it no longer holds: another process took the peer
-- over, or the key expired while the process stalled; those sockets are superseded.
local node, ttl_ms = ARGV[1], ARGV[2]

local lost = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == node then
    redis.call('PEXPIRE', key, ttl_ms)
  else
    lost[#lost + 1] = i
  end
end
return lost
