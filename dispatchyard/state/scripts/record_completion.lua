--! include lib_common
-- Record the runner's completion summary (POST /api/sessions/{id}/completion), which the runner
-- posts just before its terminal status. Checked and written in one step so a summary never
-- lands on a session another host holds by then.
-- KEYS: session record. ARGV: host id ('' = nobody holds the session), summary, now.
-- Returns 1; refuses not_found or forbidden (another host's).
local session_key = KEYS[1]
local host_id, summary, now = ARGV[1], ARGV[2], ARGV[3]

local f = redis.call('HMGET', session_key, 'status', 'workerId')
local status, holder = f[1], f[2] or ''
if not status then return refuse('not_found', 'Session not found') end
if holder ~= host_id then return refuse('forbidden', 'Session belongs to another worker') end
redis.call('HSET', session_key, 'summary', summary, 'summaryAt', now, 'updatedAt', now)
return 1
