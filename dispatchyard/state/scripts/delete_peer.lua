--! keys peers_in_state peers_in_circle peer_name peers_named peer_pane
--! include lib_common
-- Remove a peer and every index entry that names it (DELETE /peers/{name}). A live socket is
-- left alone, as repowire leaves it: its later status frames and its end find no peer and
-- write nothing.
-- KEYS: peer hash, peers zset. ARGV: peer id.
-- Returns 1; refuses not_found.
local peer_key, peers_key = KEYS[1], KEYS[2]
local id = ARGV[1]

local f = redis.call('HMGET', peer_key, 'status', 'circle', 'name', 'pane_id')
local status, circle, name, pane_id = f[1], f[2], f[3], f[4]
if redis.call('EXISTS', peer_key) == 0 then return refuse('not_found', 'Peer not found') end
redis.call('DEL', peer_key)
redis.call('ZREM', peers_key, id)
if status then redis.call('SREM', K.peers_in_state(status), id) end
-- The name and pane indexes may name a newer peer by now: only our own entries go.
if circle and name then
  redis.call('SREM', K.peers_in_circle(circle), id)
  local named = K.peer_name(circle, name)
  if redis.call('GET', named) == id then redis.call('DEL', named) end
end
if name then redis.call('SREM', K.peers_named(name), id) end
if pane_id and pane_id ~= '' then
  local pane = K.peer_pane(pane_id)
  if redis.call('GET', pane) == id then redis.call('DEL', pane) end
end
return 1
