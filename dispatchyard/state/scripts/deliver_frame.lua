--! keys node_channel
-- Hand a frame to the shim process holding a peer's WebSocket, by publishing it on that
-- process's channel, in one step with reading who holds it and tracing the hand-off (before
-- the publish, so the holder's `websocket_sent` stage comes after it).
-- KEYS: the peer's connection key, the delivery's trace list ('' = untraced).
-- ARGV: message JSON, `routed` stage JSON, `no_connection` stage JSON, trace TTL (s), the
-- caller's own node ('' for none: a worker).
-- Returns {n, node}: n = processes that received it (1), 0 when the holder is gone (its key
-- is stale: the caller disconnects it), -1 when no socket holds the peer, 2 when the caller
-- holds it itself (nothing published: the caller hands the frame to its own socket).
local ws_key, trace_key = KEYS[1], KEYS[2]
local message, routed, no_connection, trace_ttl_s = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local own_node = ARGV[5]

local function trace(entry)
  if trace_key ~= '' then
    redis.call('RPUSH', trace_key, entry)
    redis.call('EXPIRE', trace_key, trace_ttl_s)
  end
end

local node = redis.call('GET', ws_key)
if not node then
  trace(no_connection)
  return {-1, ''}
end
trace(routed)
if node == own_node then
  return {2, node}
end
return {redis.call('PUBLISH', K.node_channel(node), message), node}
