-- Record the tool a session is using; `toolSince` moves only when the tool changes, so health
-- can see one tool held for too long.
-- KEYS: session record. ARGV: host id, tool name, now.
-- Returns 1 | 0 (not found) | -1 (another host's).
local f = redis.call('HMGET', KEYS[1], 'workerId', 'lastTool', 'status')
if not f[3] then return 0 end
if f[1] ~= ARGV[1] then return -1 end
if f[2] ~= ARGV[2] then redis.call('HSET', KEYS[1], 'lastTool', ARGV[2], 'toolSince', ARGV[3]) end
redis.call('HSET', KEYS[1], 'lastToolAt', ARGV[3], 'updatedAt', ARGV[3])
return 1
