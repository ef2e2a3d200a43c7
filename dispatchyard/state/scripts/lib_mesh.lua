-- Resolving peers and handing frames to their sockets (pasted in by `--! include lib_mesh`;
-- the script asks for the keys peer peer_name peers_named peer_ws node_channel), as
-- state/peers.py and state/messaging.py do it in Python.

-- A peer's fields that matter to a message, or nil when it is not registered.
local function mesh_peer(peer_id)
  if not peer_id then return nil end
  local f = redis.call('HMGET', K.peer(peer_id), 'peer_id', 'name', 'circle', 'role', 'metadata')
  if not f[1] then return nil end
  local circle = f[3]
  if not circle or circle == '' then circle = 'global' end
  return {id = f[1], name = f[2], circle = circle, role = f[4] or '', metadata = f[5]}
end

local function mesh_is_id(name) return string.sub(name, 1, 6) == 'repow-' end

-- The recipient named `ident` (an id, a name in `circle`, or a name only one circle has):
-- the peer, or nil and the refusal to return.
local function mesh_target(ident, circle)
  if mesh_is_id(ident) then
    local peer = mesh_peer(ident)
    if peer then return peer end
  elseif circle ~= '' then
    local peer = mesh_peer(redis.call('GET', K.peer_name(circle, ident)))
    if peer then return peer end
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
      return nil, refuse('conflict', 'ambiguous_peer', {detail = detail})
    end
    local peer = mesh_peer(ids[1])
    if peer then return peer end
  end
  return nil, refuse('not_found', 'Peer not found: ' .. ident)
end

-- The registered peer a message from `name` is from, preferring `circle`; nil for a sender
-- that is no peer (the CLI, an operator) or a name several other circles have.
local function mesh_sender(name, circle)
  if mesh_is_id(name) then return mesh_peer(name) end
  local in_circle = redis.call('GET', K.peer_name(circle, name))
  if in_circle then return mesh_peer(in_circle) end
  local ids = redis.call('SMEMBERS', K.peers_named(name))
  if #ids == 1 then return mesh_peer(ids[1]) end
  return nil
end

-- The refusal of the circle rule (agents talk within their circle; the `crossing` roles,
-- space-separated, cross circles), or nil.
local function mesh_circle_refusal(source, dest, bypass, crossing_roles)
  if bypass or not source then return nil end
  local crossing = {}
  for role in string.gmatch(crossing_roles, '%S+') do crossing[role] = true end
  if crossing[source.role] or crossing[dest.role] or source.circle == dest.circle then
    return nil
  end
  return refuse('forbidden', 'Circle boundary: ' .. source.name .. ' cannot reach ' .. dest.name)
end

-- Whether a peer gets deliveries queued while it has no socket (metadata.repowire_cli_fallback).
local function mesh_queues(peer)
  if not peer.metadata or peer.metadata == '' then return false end
  local ok, metadata = pcall(cjson.decode, peer.metadata)
  if not ok or type(metadata) ~= 'table' then return false end
  local flag = metadata.repowire_cli_fallback
  return flag ~= nil and flag ~= cjson.null and flag ~= false and flag ~= 0 and flag ~= ''
end

-- Hand `message` (JSON text, built by `build()` only when it is published) to the process
-- holding the peer's socket: {outcome, node}: 1 published, 0 the holder is gone, -1 no socket
-- holds it, 2 the caller (`own_node`) holds it (nothing published).
local function mesh_publish(peer_id, own_node, build)
  local node = redis.call('GET', K.peer_ws(peer_id))
  if not node then return -1, '' end
  if node == own_node then return 2, node end
  return redis.call('PUBLISH', K.node_channel(node), build()), node
end
