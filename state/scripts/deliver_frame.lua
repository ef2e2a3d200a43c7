-- Hand a frame to the shim process holding a peer's WebSocket, by publishing it on that
-- process's channel, in one step with reading who holds it.
-- KEYS: the peer's connection key.
-- ARGV: node channel prefix, message JSON.
-- Returns {n, node}: n = processes that received it (1), 0 when the holder is gone (its key
-- is stale: the caller disconnects it), -1 when no socket holds the peer.
local node = redis.call('GET', KEYS[1])
if not node then return {-1, ''} end
return {redis.call('PUBLISH', ARGV[1] .. node, ARGV[2]), node}
