--! include lib_common
--! keys host_sessions
-- Lock refresh (POST /api/sessions/{id}/lock-refresh): the runner says, every 30 s, that it
-- still works this session. Our equivalent of agentfactory's per-issue lock is the claim marker
-- `work:claim:{id}` held by the session's host while the session is active (in the host's
-- sessions set: claimed, running, finalizing); a refresh that finds it held stamps
-- `lockRefreshedAt` (the session's last-seen).
-- KEYS: session record, claim marker. ARGV: session id, host id, issue id, now.
-- Returns 1 (refreshed) or 0 (not held: the session moved on, terminal, requeued, another
-- issue); refuses not_found or forbidden (another host's session).
local session_key, claim_key = KEYS[1], KEYS[2]
local session_id, host_id, issue_id, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local f = redis.call('HMGET', session_key, 'status', 'workerId', 'issueId')
local status, holder, session_issue = f[1], f[2] or '', f[3]
if not status then return refuse('not_found', 'Session not found') end
if holder ~= '' and holder ~= host_id then
  return refuse('forbidden', 'Session belongs to another worker')
end
if holder == '' or session_issue ~= issue_id then return 0 end
if redis.call('SISMEMBER', K.host_sessions(holder), session_id) == 0 then return 0 end
if redis.call('GET', claim_key) ~= holder then return 0 end
redis.call('HSET', session_key, 'lockRefreshedAt', now)
return 1
