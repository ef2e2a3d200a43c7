--! include lib_common
-- The WebSocket that shim process `node` held for a peer ended: forget it and make the peer
-- offline, unless another socket (on any process) has taken the peer over meanwhile. Also what
-- a delivery does when the holding process is gone (`node` = the one it found).
-- KEYS: peer hash, its connection key.
-- ARGV: P JSON (state prefix), peer id, node, now, PEER_TRANSITIONS JSON.
-- Returns 1 when the peer went offline, 0 otherwise.
local P = cjson.decode(ARGV[1])
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
redis.call('DEL', KEYS[2])
local current = redis.call('HGET', KEYS[1], 'status')
-- A retired peer stays retired: its socket's end is not a move back to offline.
if not current or current == 'offline' or current == 'retired'
    or not may_reach(ARGV[5], current, 'offline') then
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'offline', 'last_seen', ARGV[4])
redis.call('SREM', P.state .. current, ARGV[2])
redis.call('SADD', P.state .. 'offline', ARGV[2])
return 1
