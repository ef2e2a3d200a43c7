--! include lib_common
--! keys peers_in_state
--! machines peer
-- Set a registered peer's status and move it between the status indexes; never creates a
-- peer. Staying is a repeated report (it refreshes last_seen).
-- KEYS: peer hash. ARGV: peer id, status, now (ms).
-- Returns 1; refuses not_found, or conflict when PEER forbids the move (nothing written).
local peer_key = KEYS[1]
local peer_id, status, now = ARGV[1], ARGV[2], ARGV[3]

local current = redis.call('HGET', peer_key, 'status')
if not current then return refuse('not_found', 'Peer not found') end
if not may_move(PEER, current, status) then
  return refuse('conflict', 'Peer cannot move from ' .. current .. ' to ' .. status,
    {state = current})
end
redis.call('HSET', peer_key, 'status', status, 'last_seen', now)
if current ~= status then redis.call('SREM', K.peers_in_state(current), peer_id) end
redis.call('SADD', K.peers_in_state(status), peer_id)
return 1
