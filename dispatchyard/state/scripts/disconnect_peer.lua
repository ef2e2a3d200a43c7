--! include lib_common
--! keys peers_in_state
--! machines peer
-- The WebSocket that shim process `node` held for a peer ended: forget it and make the peer
-- offline, unless another socket (on any process) has taken the peer over meanwhile. Also what
-- a delivery does when the holding process is gone (`node` = the one it found).
-- KEYS: peer hash, its connection key. ARGV: peer id, node, now.
-- Returns 1 when the peer went offline, 0 otherwise (taken over, already offline, unknown, or
-- retired: a socket's end is no move out of retirement, and PEER says so).
local peer_key, ws_key = KEYS[1], KEYS[2]
local peer_id, node, now = ARGV[1], ARGV[2], ARGV[3]

if redis.call('GET', ws_key) ~= node then return 0 end
redis.call('DEL', ws_key)
local current = redis.call('HGET', peer_key, 'status')
if current == 'offline' or current == 'retired' or not may_move(PEER, current, 'offline') then
  return 0
end
redis.call('HSET', peer_key, 'status', 'offline', 'last_seen', now)
redis.call('SREM', K.peers_in_state(current), peer_id)
redis.call('SADD', K.peers_in_state('offline'), peer_id)
return 1
