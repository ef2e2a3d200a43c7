--! include lib_common
--! keys peers_in_state node_channel
--! machines peer
-- Mark a peer offline (POST /peers/{name}/offline), or retire it (`terminal`). Retiring also
-- severs its transport in the same step: the connection key goes and the holding shim process
-- is asked to send the error frame and close the socket. Removing the key here, not when the
-- socket ends, keeps that end from finding the peer still held (and moving it back to
-- offline). A plain offline leaves a live socket open, as repowire does; its next status frame
-- reports it again.
-- KEYS: peer hash, its connection key, the events stream.
-- ARGV: peer id, now ms, '1' to retire, fields JSON (written as given: the reason, source,
--       detail), close message JSON, event JSON ({type, timestamp, data: JSON without
--       old_status}), events maxlen.
-- Returns {node that held the socket or '', processes that got the close}; refuses not_found,
-- or conflict (PEER forbids the move; nothing written). Marking a retired peer offline (not
-- terminal) changes nothing: only a registration whose agent is alive brings it back.
local peer_key, ws_key, events_key = KEYS[1], KEYS[2], KEYS[3]
local peer_id, now, terminal = ARGV[1], ARGV[2], ARGV[3] == '1'
local fields_json, close_message, event_json, events_maxlen = ARGV[4], ARGV[5], ARGV[6], ARGV[7]

local current = redis.call('HGET', peer_key, 'status')
if not current then return refuse('not_found', 'Peer not found') end
if current == 'retired' and not terminal then return {'', 0} end
local target = terminal and 'retired' or 'offline'
if not may_move(PEER, current, target) then
  return refuse('conflict', 'Peer cannot go ' .. target .. ' from ' .. current,
    {state = current})
end
local holder = redis.call('GET', ws_key) or ''
-- A peer stored online whose holder is gone was already offline (as reads show it).
local was = current
if (was == 'online' or was == 'busy') and holder == '' then was = 'offline' end
local flat = {'status', target, 'last_seen', now}
for k, v in pairs(cjson.decode(fields_json)) do
  flat[#flat + 1] = k
  flat[#flat + 1] = tostring(v)
end
if terminal then
  flat[#flat + 1] = 'retired_at'
  flat[#flat + 1] = now
end
redis.call('HSET', peer_key, unpack(flat))
if current ~= target then redis.call('SREM', K.peers_in_state(current), peer_id) end
redis.call('SADD', K.peers_in_state(target), peer_id)
local closed = 0
if terminal and holder ~= '' then
  redis.call('DEL', ws_key)
  closed = redis.call('PUBLISH', K.node_channel(holder), close_message)
end
-- As repowire: the event says why a peer that was up went down.
if was ~= 'offline' and was ~= 'retired' then
  local event = cjson.decode(event_json)
  local data = cjson.decode(event.data)
  data.old_status = was
  redis.call('XADD', events_key, 'MAXLEN', '~', events_maxlen, '*',
    'type', event.type, 'timestamp', event.timestamp, 'data', cjson.encode(data))
end
return {holder, closed}
