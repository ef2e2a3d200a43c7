--! include lib_common
-- Set a registered peer's status and move it between the status indexes; never creates a peer.
-- KEYS: peer hash, the index of the new status.
-- ARGV: status-index prefix, peer id, status, the states it may be reached from (JSON list),
--       now (ms).
-- Returns 1; 0 for an unknown peer; -1 (nothing written) when its state forbids the move.
local current = redis.call('HGET', KEYS[1], 'status')
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if not current or not may_move(ARGV[4], current) then return -1 end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'last_seen', ARGV[5])
if current ~= ARGV[3] then redis.call('SREM', ARGV[1] .. current, ARGV[2]) end
redis.call('SADD', KEYS[2], ARGV[2])
return 1
