--! include lib_common lib_mesh
--! keys peer peer_name peers_named peer_ws node_channel trace events
-- A notification, in one step: resolve the recipient and the sender as send_ask.lua does,
-- apply the circle rule, trace `created` and `resolved_peer`, and, when a socket holds the
-- recipient, trace `routed`, hand it the frame and log the event. A recipient with no socket
-- is left to the caller, which queues the notification (its trace goes on with `pending`).
-- Nothing is written when it refuses.
-- ARGV: 1 recipient (id or name), 2 circle ('' = any), 3 sender name, 4 bypass the circle
--   rule ('1'/'0'), 5 delivery id, 6 now ISO, 7 frame JSON head (the frame's fields but
--   `to_peer`, without its closing brace), 8 the caller's own node ('' = none), 9 trace TTL
--   (s), 10 events maxlen, 11 cross-circle roles (space-separated), 12 event JSON ({type,
--   timestamp, data: JSON with a `to_peer` to fill}).
-- Returns {outcome, recipient id, recipient name, sender id ('' for none), holding node}:
--   outcome as mesh_publish's (1 published, 2 the caller holds the socket, 0 the holder is
--   gone, -1 no socket).
-- Refuses not_found, conflict (an ambiguous name), forbidden (the circle rule).
local ident, circle, from_name, bypass = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
local delivery_id, now, frame_head, own_node = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local trace_ttl_s, events_maxlen, crossing_roles, event_json = ARGV[9], ARGV[10], ARGV[11],
  ARGV[12]

local dest, refusal = mesh_target(ident, circle)
if not dest then return refusal end
local source = mesh_sender(from_name, dest.circle)
refusal = mesh_circle_refusal(source, dest, bypass, crossing_roles)
if refusal then return refusal end

local trace_key = K.trace(delivery_id)
local function stage(name, from_peer_id)
  redis.call('RPUSH', trace_key, cjson.encode({
    stage = name, status = 'ok', peer_id = dest.id,
    from_peer_id = from_peer_id or cjson.null, ts = now, detail = {},
  }))
end
stage('created', source and source.id or from_name)
stage('resolved_peer')
local outcome, node = mesh_publish(dest.id, own_node, function()
  return '{"peer_id":' .. cjson.encode(dest.id) .. ',"frame":' .. frame_head
    .. ',"to_peer":' .. cjson.encode(dest.name) .. '}}'
end)
if outcome > 0 then
  stage('routed')
  local event = cjson.decode(event_json)
  local data = cjson.decode(event.data)
  data.to_peer = dest.name
  redis.call('XADD', K.events, 'MAXLEN', '~', events_maxlen, '*',
    'type', event.type, 'timestamp', event.timestamp, 'data', cjson.encode(data))
end
redis.call('EXPIRE', trace_key, trace_ttl_s)
return {outcome, dest.id, dest.name, source and source.id or '', node}
