--! include lib_sessions
-- Pop and claim up to min(capacity - active, batch max) sessions, best score first, from the
-- queue indexes of the projects the host serves.
-- KEYS: host hash, host sessions set.
-- ARGV: prefixes JSON, now, batch max, the caller's token revocation key ('' = none),
--       the caller's org id.
-- Returns payloads; {-1} for an unknown host (or another org's); {-2} for a revoked token.
if ARGV[4] ~= '' and redis.call('EXISTS', ARGV[4]) == 1 then return {-2} end
local P = cjson.decode(ARGV[1])
local now = ARGV[2]
local w = redis.call('HMGET', KEYS[1], 'capacity', 'status', 'hostStatus', 'id', 'orgId',
  'projects', 'reportedStatus')
if not w[1] or w[5] ~= ARGV[5] or w[2] == 'deregistered' then return {-1} end
-- A host the platform has told anything but "ok" (pool deleted, unauthorized, ...) gets no work.
if w[3] and w[3] ~= '' and w[3] ~= 'ok' then return {} end
-- Nor does a host whose last heartbeat said it is draining: the daemon sends that status so the
-- server stops dispatching to it, and would only nack what it was handed.
if w[7] == 'draining' then return {} end
local indexes = {}
local projects = cjson.decode(w[6])
if projects == 'all' then
  indexes[1] = P.org_queue .. w[5]
else
  for i, p in ipairs(projects) do indexes[i] = P.project_queue .. p end
end
local want = math.min(tonumber(w[1]) - redis.call('SCARD', KEYS[2]), tonumber(ARGV[3]))
local out = {}
local rounds = 0
-- More than one round only when stale index entries were dropped.
while #out < want and rounds < 4 do
  rounds = rounds + 1
  local need = want - #out
  local cands = {}
  for _, index in ipairs(indexes) do
    local r = redis.call('ZRANGE', index, 0, need - 1, 'WITHSCORES')
    for j = 1, #r, 2 do cands[#cands + 1] = {r[j], tonumber(r[j + 1])} end
  end
  if #cands == 0 then break end
  table.sort(cands, function(a, b)
    if a[2] == b[2] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
  for i = 1, math.min(need, #cands) do
    local payload = claim_one(P, cands[i][1], w[4], now)
    if payload then out[#out + 1] = payload end
  end
end
return out
