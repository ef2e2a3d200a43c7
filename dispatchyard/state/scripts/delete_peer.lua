-- Remove a peer and every index entry that names it (DELETE /peers/{name}). A live socket is
-- left alone, as repowire leaves it: its later status frames and its end find no peer and
-- write nothing.
-- KEYS: peer hash, peers zset.
-- ARGV: P JSON (state, circle, name, named and pane prefixes), peer id.
-- Returns 1; 0 for an unknown peer.
local P = cjson.decode(ARGV[1])
local id = ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local f = redis.call('HMGET', KEYS[1], 'status', 'circle', 'name', 'pane_id')
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], id)
if f[1] then redis.call('SREM', P.state .. f[1], id) end
-- The name and pane indexes may name a newer peer by now: only our own entries go.
if f[2] and f[3] then
  redis.call('SREM', P.circle .. f[2], id)
  local named = P.name .. f[2] .. ':' .. f[3]
  if redis.call('GET', named) == id then redis.call('DEL', named) end
end
if f[3] then redis.call('SREM', P.named .. f[3], id) end
if f[4] and f[4] ~= '' then
  local pane = P.pane .. f[4]
  if redis.call('GET', pane) == id then redis.call('DEL', pane) end
end
return 1
