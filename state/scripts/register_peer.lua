--! include lib_common
-- Register a peer; the same name in the same circle keeps its peer id. Keeps the peer's status
-- and circle indexes.
-- KEYS: name index (circle, name), peers zset, peers-named set, pane index ('' = no pane),
--       the circle's index, the index of the status the peer moves to.
-- ARGV: P JSON (peer, state and circle prefixes), candidate id, now, fields JSON (with the
--       status it moves to), the states that status may be reached from (JSON list).
-- Returns the peer id, or nil (nothing written) when the peer's state forbids the move.
local P = cjson.decode(ARGV[1])
local named = redis.call('GET', KEYS[1])
local id = named or ARGV[2]
local key = P.peer .. id
local old = redis.call('HMGET', key, 'status', 'circle')
if old[1] and not may_move(ARGV[5], old[1]) then return false end
if not named then redis.call('SET', KEYS[1], id) end
local fields = cjson.decode(ARGV[4])
fields['peer_id'] = id
if redis.call('EXISTS', key) == 0 then fields['registered_at'] = ARGV[3] end
hset_table(key, fields)
redis.call('ZADD', KEYS[2], 'NX', ARGV[3], id)
redis.call('SADD', KEYS[3], id)
if KEYS[4] ~= '' then redis.call('SET', KEYS[4], id) end
-- Out of its old indexes: registering brings an offline peer back online, and a peer id
-- given by the caller may move a peer to another circle.
if old[1] and old[1] ~= fields.status then redis.call('SREM', P.state .. old[1], id) end
if old[2] and old[2] ~= fields.circle then redis.call('SREM', P.circle .. old[2], id) end
redis.call('SADD', KEYS[5], id)
redis.call('SADD', KEYS[6], id)
return id
