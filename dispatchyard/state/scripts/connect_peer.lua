--! include lib_common
--! keys peers_in_state
--! machines peer
-- A peer's WebSocket is held by shim process `node`: record it (expiring unless renewed) and
-- bring the peer online (busy stays busy across a reconnect).
-- KEYS: peer hash, its connection key. ARGV: peer id, node, ttl ms, now.
-- Returns the node that held it before ('' for none); refuses not_found, or conflict (PEER
-- forbids the move; a retired peer's `state` is 'retired').
local peer_key, ws_key = KEYS[1], KEYS[2]
local peer_id, node, ttl_ms, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local current = redis.call('HGET', peer_key, 'status')
if not current then return refuse('not_found', 'Peer not found') end
local previous = redis.call('GET', ws_key) or ''
local status = (current == 'busy' and previous ~= '') and 'busy' or 'online'
if not may_move(PEER, current, status) then
  return refuse('conflict', 'Peer cannot connect from ' .. current, {state = current})
end
redis.call('SET', ws_key, node, 'PX', ttl_ms)
redis.call('HSET', peer_key, 'status', status, 'last_seen', now)
if current ~= status then redis.call('SREM', K.peers_in_state(current), peer_id) end
redis.call('SADD', K.peers_in_state(status), peer_id)
return previous
