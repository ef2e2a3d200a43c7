--! include lib_common
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

local function is_id(name) return string.sub(name, 1, 6) == 'repow-' end

-- A peer's fields that matter here, or nil when it is not registered.
local function load(peer_id)
  if not peer_id then return nil end
  local f = redis.call('HMGET', K.peer(peer_id), 'peer_id', 'name', 'circle', 'role', 'metadata')
  if not f[1] then return nil end
  return {id = f[1], name = f[2], circle = f[3], role = f[4], metadata = f[5]}
end

local dest
if is_id(ident) then
  dest = load(ident)
elseif circle ~= '' then
  dest = load(redis.call('GET', K.peer_name(circle, ident)))
else
  local ids = redis.call('SMEMBERS', K.peers_named(ident))
  table.sort(ids)
  if #ids > 1 then
    local candidates = {}
    for _, id in ipairs(ids) do
      candidates[#candidates + 1] = {
        peer_id = id, circle = redis.call('HGET', K.peer(id), 'circle') or cjson.null,
      }
    end
    local detail = {error = 'ambiguous_peer', peer = ident, candidates = candidates}
    return refuse('conflict', 'ambiguous_peer', {detail = detail})
  end
  dest = load(ids[1])
end
if not dest then return refuse('not_found', 'Peer not found: ' .. ident) end
local dest_circle = dest.circle
if not dest_circle or dest_circle == '' then dest_circle = 'global' end

-- The sender: in the recipient's circle when the name is there, else the only one so named.
local source
if is_id(from_name) then
  source = load(from_name)
else
  local in_circle = redis.call('GET', K.peer_name(dest.circle or '', from_name))
  if in_circle then
    source = load(in_circle)
  else
    local ids = redis.call('SMEMBERS', K.peers_named(from_name))
    if #ids == 1 then source = load(ids[1]) end
  end
end

if source and not bypass then
  local crossing = {}
  for role in string.gmatch(crossing_roles, '%S+') do crossing[role] = true end
  local source_circle = source.circle
  if not source_circle or source_circle == '' then source_circle = 'global' end
  if not crossing[source.role or ''] and not crossing[dest.role or '']
      and source_circle ~= dest_circle then
    return refuse('forbidden',
      'Circle boundary: ' .. source.name .. ' cannot reach ' .. dest.name)
  end
end

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

local queues = '0'
if dest.metadata and dest.metadata ~= '' then
  local ok, metadata = pcall(cjson.decode, dest.metadata)
  if ok and type(metadata) == 'table' and metadata.repowire_cli_fallback
      and metadata.repowire_cli_fallback ~= cjson.null then
    queues = '1'
  end
end

local node = redis.call('GET', K.peer_ws(dest.id))
local outcome
if not node then
  stage('no_connection', false)
  node, outcome = '', -1
else
  stage('routed', true)
  if node == own_node then
    outcome = 2
  else
    local message = '{"peer_id":' .. cjson.encode(dest.id) .. ',"frame":' .. frame_head
      .. ',"to_peer":' .. cjson.encode(dest.name) .. '}}'
    outcome = redis.call('PUBLISH', K.node_channel(node), message)
  end
end
redis.call('EXPIRE', trace_key, trace_ttl_s)
return {outcome, dest.id, dest.name, node, queues}
