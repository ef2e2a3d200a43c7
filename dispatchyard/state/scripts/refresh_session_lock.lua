-- Lock refresh (POST /api/sessions/{id}/lock-refresh): the runner says, every 30 s, that it
-- still works this session. Our equivalent of agentfactory's per-issue lock is the claim marker
-- `work:claim:{id}` held by the session's worker while the session is active; a refresh that
-- finds it held stamps `lockRefreshedAt` (the session's last-seen) and answers refreshed.
-- KEYS: session record, claim marker.
-- ARGV: host id, issue id, now, the active statuses (comma list, state/models.py).
-- Returns 'refreshed' | 'not_held' (the session moved on: terminal, requeued, another issue) |
--   'not_found' | 'forbidden' (another host's session).
local f = redis.call('HMGET', KEYS[1], 'status', 'workerId', 'issueId')
if not f[1] then return 'not_found' end
local holder = f[2] or ''
if holder ~= '' and holder ~= ARGV[1] then return 'forbidden' end
local active = false
for s in string.gmatch(ARGV[4], '[^,]+') do if s == f[1] then active = true end end
if not active or holder == '' or f[3] ~= ARGV[2] then return 'not_held' end
if redis.call('GET', KEYS[2]) ~= holder then return 'not_held' end
redis.call('HSET', KEYS[1], 'lockRefreshedAt', ARGV[3])
return 'refreshed'
