--! include lib_sessions
-- Claim one named session for a host.
-- KEYS: host hash, session record. ARGV: session id, now.
-- Returns the payload; refuses not_found (unknown or deregistered host), forbidden (the host
-- does not serve the session's project) or conflict (not queued, or the host takes no work).
local host_key, session_key = KEYS[1], KEYS[2]
local session_id, now = ARGV[1], ARGV[2]

local w = redis.call('HMGET', host_key, 'id', 'orgId', 'projects', 'status', 'hostStatus')
local host_id, host_org, projects, status, host_status = w[1], w[2], w[3], w[4], w[5]
if not host_id or status == 'deregistered' then return refuse('not_found', 'Worker not found') end
local NOT_AVAILABLE = 'Work item not available or already claimed'
local s = redis.call('HMGET', session_key, 'orgId', 'projectId', 'status')
local session_org, project_id, session_status = s[1], s[2], s[3]
if session_org ~= host_org or not may_move(SESSION, session_status, 'claimed') then
  return refuse('conflict', NOT_AVAILABLE)
end
if host_status and host_status ~= '' and host_status ~= 'ok' then
  return refuse('conflict', NOT_AVAILABLE)
end
local served = cjson.decode(projects)
if served ~= 'all' then
  local serves = false
  for _, p in ipairs(served) do if p == project_id then serves = true end end
  if not serves then
    return refuse('forbidden', 'Worker not authorized for project ' .. project_id)
  end
end
local payload = claim_one(session_id, host_id, now)
if not payload then return refuse('conflict', NOT_AVAILABLE) end
return payload
