--! include lib_common lib_mesh
--! keys peer peer_name peers_named peer_ws node_channel trace ask asks_inbound asks_outbound asks_open events
-- Open an ask and hand its frame to the shim process holding the recipient's WebSocket, in
-- one step: resolve the recipient (by id, by name in a circle, or by a name only one circle
-- has) and the sender (a registered peer preferring the recipient's circle, or nobody), apply
-- the circle rule, store the open ask with its indexes, `created` / `resolved_peer` stages and
-- event, then read who holds the socket, trace `routed` and publish (or `no_connection`).
-- Nothing is written when it refuses. The ask's record is the caller's, but for who it is to
-- and from, which only this script knows.
-- ARGV: 1 recipient (id or name), 2 circle ('' = any), 3 sender name, 4 bypass the circle
--   rule ('1'/'0'), 5 correlation id, 6 record JSON (fields of the ask hash), 7 now ms,
--   8 now ISO, 9 event JSON ({type, timestamp, data: JSON with a `to_peer` to fill}),
--   10 frame JSON head (the frame's fields but `to_peer`, without its closing brace),
--   11 the caller's own node ('' = none), 12 trace TTL (s), 13 events maxlen,
--   14 cross-circle roles (space-separated).
-- Returns {outcome, recipient id, recipient name, holding node, queues when offline ('1')}:
--   outcome 1 published, 2 the caller holds the socket (nothing published: it hands the
--   frame over itself), -1 no socket holds the recipient, 0 the holder is gone (the caller
--   disconnects it).
-- Refuses not_found (unknown recipient), conflict (a name in several circles: detail names
-- the candidates), forbidden (the circle rule).
local ident, circle, from_name, bypass = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
local cid, record_json, now_ms, now = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local event_json, frame_head, own_node = ARGV[9], ARGV[10], ARGV[11]
local trace_ttl_s, events_maxlen, crossing_roles = ARGV[12], ARGV[13], ARGV[14]

local dest, refusal = mesh_target(ident, circle)
if not dest then return refusal end
local source = mesh_sender(from_name, dest.circle)
refusal = mesh_circle_refusal(source, dest, bypass, crossing_roles)
if refusal then return refusal end

-- The open ask, as asks.write_open stores it.
local asker = source and source.id or from_name
local record = cjson.decode(record_json)
record.to_peer, record.to_peer_id, record.from_peer_id = dest.name, dest.id, asker
hset_table(K.ask(cid), record)
redis.call('ZADD', K.asks_inbound(dest.id), now_ms, cid)
redis.call('ZADD', K.asks_outbound(asker), now_ms, cid)
redis.call('ZADD', K.asks_open, now_ms, cid)

local trace_key = K.trace(cid)
local function stage(name, ok, from_peer_id)
  redis.call('RPUSH', trace_key, cjson.encode({
    stage = name, status = ok and 'ok' or 'fail', peer_id = dest.id,
    from_peer_id = from_peer_id or cjson.null, ts = now, detail = {},
  }))
end
stage('created', true, asker)
stage('resolved_peer', true)

local event = cjson.decode(event_json)
local data = cjson.decode(event.data)
data.to_peer = dest.name
redis.call('XADD', K.events, 'MAXLEN', '~', events_maxlen, '*',
  'type', event.type, 'timestamp', event.timestamp, 'data', cjson.encode(data))

local queues = mesh_queues(dest) and '1' or '0'
local outcome, node = mesh_publish(dest.id, own_node, function()
  return '{"peer_id":' .. cjson.encode(dest.id) .. ',"frame":' .. frame_head
    .. ',"to_peer":' .. cjson.encode(dest.name) .. '}}'
end)
stage(outcome == -1 and 'no_connection' or 'routed', outcome ~= -1)
redis.call('EXPIRE', trace_key, trace_ttl_s)
return {outcome, dest.id, dest.name, node, queues}
