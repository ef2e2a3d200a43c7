--! include lib_common lib_asks
--! keys peer peer_ws node_channel ask trace asks_inbound asks_outbound asks_open events asks_resolved
-- The reply to an open ask (`POST /ack` with a message): hand the reply frame to the shim
-- process holding the asker's WebSocket and close the ask, in one step. Only the plain case
-- is done here: an ask that is a structured question, closed, or replied to by pull is
-- answered 'other' with nothing written, and the caller takes its general path.
-- ARGV: 1 correlation id, 2 reply text, 3 fields JSON (written on close beside
--   close_reason and responder), 4 now ISO, 5 reply frame JSON head (its fields but
--   from_peer, to_peer and text, without the closing brace), 6 the caller's own node
--   ('' = none), 7 seconds a closed ask is kept, 8 trace TTL (s), 9 events maxlen,
--   10 event JSON ({type, timestamp, data}).
-- Returns {outcome, asker name, responder name, holder node, asker id}: outcome 'other' (see above; nothing
-- written), 'not_found', 'nobody' (the asker is no registered peer: closed, nothing sent),
-- 'offline' (the asker has no live socket: only `no_connection` traced, the ask stays
-- open), 'published', 'own' (the caller holds the asker's socket: closed, nothing
-- published, the caller hands the frame over), 'gone' (the holder died: only `routed`
-- traced, the ask stays open; the caller disconnects the holder, the 4th item).
local cid, message, fields_json, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local frame_head, own_node, closed_kept_s = ARGV[5], ARGV[6], ARGV[7]
local trace_ttl_s, events_maxlen, event_json = ARGV[8], ARGV[9], ARGV[10]

local ask_key, trace_key = K.ask(cid), K.trace(cid)
local a = redis.call('HMGET', ask_key, 'status', 'question', 'reply_delivery', 'from_peer_id',
  'to_peer', 'to_peer_id')
local status, question, delivery, asker_id, to_peer, to_peer_id = a[1], a[2], a[3], a[4], a[5],
  a[6]
if not status then return {'not_found', '', ''} end
if status ~= 'open' or (question and question ~= '') or delivery == 'pull' then
  return {'other', '', ''}
end
to_peer = to_peer or ''

local function entry(stage, ok, peer_id)
  return cjson.encode({
    stage = stage, status = ok and 'ok' or 'fail', peer_id = peer_id or cjson.null,
    from_peer_id = cjson.null, ts = now, detail = {},
  })
end

local asker_name = asker_id and redis.call('HGET', K.peer(asker_id), 'name')
local outcome = 'nobody'
if asker_name then
  local node = redis.call('GET', K.peer_ws(asker_id))
  if not node then
    redis.call('RPUSH', trace_key, entry('no_connection', false, asker_id))
    redis.call('EXPIRE', trace_key, trace_ttl_s)
    return {'offline', asker_name, to_peer}
  end
  redis.call('RPUSH', trace_key, entry('routed', true, asker_id))
  if node == own_node then
    outcome = 'own'
  else
    local text = '[ack #' .. cid .. ' from @' .. to_peer .. '] ' .. message
    local frame = frame_head .. ',"from_peer":' .. cjson.encode(to_peer) .. ',"to_peer":'
      .. cjson.encode(asker_name) .. ',"text":' .. cjson.encode(text) .. '}'
    local body = '{"peer_id":' .. cjson.encode(asker_id) .. ',"frame":' .. frame .. '}'
    if redis.call('PUBLISH', K.node_channel(node), body) == 0 then
      return {'gone', asker_name, to_peer, node, asker_id}
    end
    outcome = 'published'
  end
end

local fields = cjson.decode(fields_json)
fields.close_reason = 'ack_with_msg'
if to_peer_id and to_peer_id ~= '' then fields.responder = to_peer_id end
local stage = cjson.encode({
  stage = 'acked', status = 'ok', peer_id = (to_peer_id ~= '' and to_peer_id) or cjson.null,
  ts = now, detail = {reason = 'ack_with_msg'},
})
close_ask(ask_key, trace_key, cid, fields, now, stage, cjson.decode(event_json), closed_kept_s,
  trace_ttl_s, events_maxlen)
return {outcome, asker_name or '', to_peer, '', asker_id or ''}
