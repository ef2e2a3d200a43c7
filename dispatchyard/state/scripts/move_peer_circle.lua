-- Move a peer to another circle (POST /peers/circle): its record, its circle index and its
-- name index move together. Its id keeps the circle it was first registered in, as repowire's.
-- KEYS: peer hash, the new circle's index.
-- ARGV: P JSON (peer, circle and name prefixes), peer id, new circle.
-- Returns 'ok' (also when it is already there), 'unknown', or 'taken' when another peer of the
-- same name is in the new circle (names are unique within a circle; nothing written).
local P = cjson.decode(ARGV[1])
local id, circle = ARGV[2], ARGV[3]
local f = redis.call('HMGET', KEYS[1], 'circle', 'name')
if not f[1] or not f[2] then return 'unknown' end
if f[1] == circle then return 'ok' end
local target = P.name .. circle .. ':' .. f[2]
local holder = redis.call('GET', target)
if holder and holder ~= id and redis.call('EXISTS', P.peer .. holder) == 1 then
  return 'taken'
end
local source = P.name .. f[1] .. ':' .. f[2]
if redis.call('GET', source) == id then redis.call('DEL', source) end
redis.call('SET', target, id)
redis.call('SREM', P.circle .. f[1], id)
redis.call('SADD', KEYS[2], id)
redis.call('HSET', KEYS[1], 'circle', circle)
return 'ok'
