--! include lib_sessions
-- Pop and claim up to min(capacity - active, batch max) sessions, best score first, from the
-- queue indexes of the projects the host serves.
-- KEYS: host hash, host sessions set.
-- ARGV: now, batch max, the caller's token revocation key ('' = none), the caller's org id.
-- Returns the claimed payloads; refuses unauthorized (a revoked token) or not_found (an
-- unknown host, another org's, or a deregistered one).
local host_key, host_sessions_key = KEYS[1], KEYS[2]
local now, batch_max, revoked_key, org_id = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]

if revoked_key ~= '' and redis.call('EXISTS', revoked_key) == 1 then
  return refuse('unauthorized', 'Unauthorized')
end
local w = redis.call('HMGET', host_key, 'capacity', 'status', 'hostStatus', 'id', 'orgId',
  'projects', 'reportedStatus')
local capacity, status, host_status, host_id, host_org = w[1], w[2], w[3], w[4], w[5]
local projects, reported = w[6], w[7]
if not capacity or host_org ~= org_id or status == 'deregistered' then
  return refuse('not_found', 'Worker not found')
end
-- A host the platform has told anything but "ok" (pool deleted, unauthorized, ...) gets no work.
if host_status and host_status ~= '' and host_status ~= 'ok' then return {} end
-- Nor does a host whose last heartbeat said it is draining: the daemon sends that status so the
-- server stops dispatching to it, and would only nack what it was handed.
if reported == 'draining' then return {} end
local indexes = {}
local served = cjson.decode(projects)
if served == 'all' then
  indexes[1] = K.org_queue(host_org)
else
  for i, project_id in ipairs(served) do indexes[i] = K.project_queue(project_id) end
end
local want = math.min(tonumber(capacity) - redis.call('SCARD', host_sessions_key), batch_max)
local out = {}
local rounds = 0
-- More than one round only when stale index entries were dropped.
while #out < want and rounds < 4 do
  rounds = rounds + 1
  local need = want - #out
  local candidates = {}
  for _, index in ipairs(indexes) do
    local r = redis.call('ZRANGE', index, 0, need - 1, 'WITHSCORES')
    for j = 1, #r, 2 do candidates[#candidates + 1] = {r[j], tonumber(r[j + 1])} end
  end
  if #candidates == 0 then break end
  table.sort(candidates, function(a, b)
    if a[2] == b[2] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
  for i = 1, math.min(need, #candidates) do
    local payload = claim_one(candidates[i][1], host_id, now)
    if payload then out[#out + 1] = payload end
  end
end
return out
