-- Renew the connection keys shim process `node` holds (its presence heartbeat).
-- KEYS: the connection keys of the peers whose sockets it holds.
-- ARGV: node, ttl ms.
-- Returns the indexes (1-based) of the keys it no longer holds: another process took the peer
-- over, or the key expired while the process stalled; those sockets are superseded.
local lost = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
  else
    lost[#lost + 1] = i
  end
end
return lost
