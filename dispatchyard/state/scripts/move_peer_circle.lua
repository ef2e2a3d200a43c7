--! include lib_common
--! keys peers_in_circle peer_name peer
-- Move a peer to another circle (POST /peers/circle): its record, its circle index and its
-- name index move together. Its id keeps the circle it was first registered in, as repowire's.
-- KEYS: peer hash, the new circle's index. ARGV: peer id, new circle.
-- Returns 1 (also when it is already there); refuses not_found, or conflict when another peer
-- of the same name is in the new circle (names are unique within a circle; nothing written).
local peer_key, circle_key = KEYS[1], KEYS[2]
local id, circle = ARGV[1], ARGV[2]

local f = redis.call('HMGET', peer_key, 'circle', 'name')
local old_circle, name = f[1], f[2]
if not old_circle or not name then return refuse('not_found', 'Peer not found') end
if old_circle == circle then return 1 end
local target = K.peer_name(circle, name)
local holder = redis.call('GET', target)
if holder and holder ~= id and redis.call('EXISTS', K.peer(holder)) == 1 then
  return refuse('conflict', 'Peer name ' .. name .. ' is already taken in circle ' .. circle)
end
local source = K.peer_name(old_circle, name)
if redis.call('GET', source) == id then redis.call('DEL', source) end
redis.call('SET', target, id)
redis.call('SREM', K.peers_in_circle(old_circle), id)
redis.call('SADD', circle_key, id)
redis.call('HSET', peer_key, 'circle', circle)
return 1
