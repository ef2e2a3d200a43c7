-- Hand a frame to the shim process holding a peer's WebSocket, by publishing it on that
-- process's channel, in one step with reading who holds it and tracing the hand-off (before
-- the publish, so the holder's `websocket_sent` stage comes after it).
-- KEYS: the peer's connection key, the delivery's trace list ('' = untraced).
-- ARGV: node channel prefix, message JSON, `routed` stage JSON, `no_connection` stage JSON,
--       trace TTL (s).
-- Returns {n, node}: n = processes that received it (1), 0 when the holder is gone (its key
-- is stale: the caller disconnects it), -1 when no socket holds the peer.
local node = redis.call('GET', KEYS[1])
local function trace(entry)
  if KEYS[2] ~= '' then
    redis.call('RPUSH', KEYS[2], entry)
    redis.call('EXPIRE', KEYS[2], ARGV[5])
  end
end
if not node then
  trace(ARGV[4])
  return {-1, ''}
end
trace(ARGV[3])
return {redis.call('PUBLISH', ARGV[1] .. node, ARGV[2]), node}
