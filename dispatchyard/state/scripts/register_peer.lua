--! include lib_common
-- Register a peer; the same name in the same circle keeps its peer id. Its status follows its
-- transport: online (or busy, as it was) while a live WebSocket holds it, else offline. Keeps
-- the peer's status and circle indexes.
-- KEYS: name index (circle, name), peers zset, peers-named set, pane index ('' = no pane),
--       the circle's index.
-- ARGV: P JSON (peer, ws, state and circle prefixes), candidate id, now, fields JSON,
--       PEER_TRANSITIONS JSON ({state: [targets]}), '1' when a retired peer may come back
--       (its agent process is alive).
-- Returns {'ok', id}, {'retired', id} (nothing written), or {'refused', id} when the table
-- forbids the move.
local P = cjson.decode(ARGV[1])
local named = redis.call('GET', KEYS[1])
local fields = cjson.decode(ARGV[4])
local id = named or ARGV[2]
local key = P.peer .. id
local old = redis.call('HMGET', key, 'status', 'circle')
if old[1] == 'retired' and ARGV[6] ~= '1' then return {'retired', id} end
local status = 'offline'
if redis.call('EXISTS', P.ws .. id) == 1 then
  status = (old[1] == 'busy') and 'busy' or 'online'
end
if old[1] and not may_reach(ARGV[5], old[1], status) then return {'refused', id} end
if not named then redis.call('SET', KEYS[1], id) end
fields['peer_id'] = id
fields['status'] = status
if redis.call('EXISTS', key) == 0 then fields['registered_at'] = ARGV[3] end
hset_table(key, fields)
redis.call('ZADD', KEYS[2], 'NX', ARGV[3], id)
redis.call('SADD', KEYS[3], id)
if KEYS[4] ~= '' then redis.call('SET', KEYS[4], id) end
-- Out of its old indexes: its status may change, and a peer id given by the caller may move a
-- peer to another circle.
if old[1] and old[1] ~= status then redis.call('SREM', P.state .. old[1], id) end
if old[2] and old[2] ~= fields.circle then redis.call('SREM', P.circle .. old[2], id) end
redis.call('SADD', KEYS[5], id)
redis.call('SADD', P.state .. status, id)
return {'ok', id}
