--! include lib_sessions
-- Claim one named session for a host.
-- KEYS: host hash, session record. ARGV: prefixes JSON, session id, now.
-- Returns {'ok', payload} | {'not_available'} | {'unauthorized', projectId} | {'no_worker'}.
local P = cjson.decode(ARGV[1])
local sid = ARGV[2]
local w = redis.call('HMGET', KEYS[1], 'id', 'orgId', 'projects', 'status', 'hostStatus')
if not w[1] or w[4] == 'deregistered' then return {'no_worker'} end
local s = redis.call('HMGET', KEYS[2], 'orgId', 'projectId', 'status')
if s[1] ~= w[2] or s[3] ~= 'queued' then return {'not_available'} end
if w[5] and w[5] ~= '' and w[5] ~= 'ok' then return {'not_available'} end
local projects = cjson.decode(w[3])
if projects ~= 'all' then
  local ok = false
  for _, p in ipairs(projects) do if p == s[2] then ok = true end end
  if not ok then return {'unauthorized', s[2]} end
end
local payload = claim_one(P, sid, w[1], ARGV[3])
if not payload then return {'not_available'} end
return {'ok', payload}
