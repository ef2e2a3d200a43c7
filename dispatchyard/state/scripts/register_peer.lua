--! include lib_common
--! keys peer peer_ws peers_in_state peers_in_circle
--! machines peer
-- Register a peer; the same name in the same circle keeps its peer id. Its status follows its
-- transport: online (or busy, as it was) while a live WebSocket holds it, else offline. Keeps
-- the peer's status and circle indexes.
-- KEYS: name index (circle, name), peers zset, peers-named set, pane index ('' = no pane),
--       the circle's index.
-- ARGV: candidate id, now, fields JSON, '1' when a retired peer may come back (its agent
--       process is alive).
-- Returns the peer id; refuses conflict (nothing written) for a retired peer that may not come
-- back (`state` 'retired', `peer_id`) or a move PEER forbids.
local name_key, peers_key, named_key, pane_key, circle_key = KEYS[1], KEYS[2], KEYS[3],
  KEYS[4], KEYS[5]
local candidate_id, now, fields_json, revive = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'

local named = redis.call('GET', name_key)
local fields = cjson.decode(fields_json)
local id = named or candidate_id
local peer_key = K.peer(id)
local old = redis.call('HMGET', peer_key, 'status', 'circle')
local old_status, old_circle = old[1], old[2]
if old_status == 'retired' and not revive then
  return refuse('conflict', 'Peer is retired', {state = 'retired', peer_id = id})
end
local status = 'offline'
if redis.call('EXISTS', K.peer_ws(id)) == 1 then
  status = (old_status == 'busy') and 'busy' or 'online'
end
if old_status and not may_move(PEER, old_status, status) then
  return refuse('conflict', 'Peer cannot register from ' .. old_status,
    {state = old_status, peer_id = id})
end
if not named then redis.call('SET', name_key, id) end
fields['peer_id'] = id
fields['status'] = status
if not old_status then fields['registered_at'] = now end
hset_table(peer_key, fields)
redis.call('ZADD', peers_key, 'NX', now, id)
redis.call('SADD', named_key, id)
if pane_key ~= '' then redis.call('SET', pane_key, id) end
-- Out of its old indexes: its status may change, and a peer id given by the caller may move a
-- peer to another circle.
if old_status and old_status ~= status then
  redis.call('SREM', K.peers_in_state(old_status), id)
end
if old_circle and old_circle ~= fields.circle then
  redis.call('SREM', K.peers_in_circle(old_circle), id)
end
redis.call('SADD', circle_key, id)
redis.call('SADD', K.peers_in_state(status), id)
return id
