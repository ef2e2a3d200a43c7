-- Record the runner's completion summary (POST /api/sessions/{id}/completion), which the runner
-- posts just before its terminal status. Checked and written in one step so a summary never
-- lands on a session another host holds by then.
-- KEYS: session record. ARGV: host id ('' = nobody holds the session), summary, now.
-- Returns 1 | 0 (not found) | -1 (another host's).
local f = redis.call('HMGET', KEYS[1], 'status', 'workerId')
if not f[1] then return 0 end
if (f[2] or '') ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[1], 'summary', ARGV[2], 'summaryAt', ARGV[3], 'updatedAt', ARGV[3])
return 1
