--! include lib_common
--! include lib_mutations
-- One heartbeat, atomically: record the host's report, apply its mutation acks, deliver (or
-- redeliver) its open mutations, and read what the response needs.
-- KEYS: host hash, host open mutations, heartbeats zset.
-- ARGV: P JSON, now, redeliver after (ms), max deliveries, host fields JSON (with the status it
--       moves to), applied ids JSON, failures JSON [{id, error}], allowlistHash ('' = none),
--       allowlist JSON ('' = none), the caller's org id, the caller's token revocation key
--       ('' = nothing to check), the states that status may be reached from (JSON list).
-- Returns {-1} for an unknown host (or one whose state forbids the move), {-2} for a revoked
--   token, else {pendingWorkCount, hostStatus, recommendedAction, candidatePoolIds JSON,
--   allowlistStale, then id, op, params, requestedAt, requestedBy per delivered mutation}.
if ARGV[11] ~= '' and redis.call('EXISTS', ARGV[11]) == 1 then return {-2} end
local P = cjson.decode(ARGV[1])
local now = tonumber(ARGV[2])
local redeliver_after, max_deliveries = tonumber(ARGV[3]), tonumber(ARGV[4])
local w = redis.call('HMGET', KEYS[1], 'id', 'orgId', 'status', 'projects', 'regKeyId',
  'allowlistHash', 'hostStatus')
-- A deregistered host is unknown here: only registering again brings it back.
if not w[1] or w[3] == 'deregistered' or w[2] ~= ARGV[10] then return {-1} end
if not may_move(ARGV[12], w[3]) then return {-1} end
local wid, org = w[1], w[2]

local fields = cjson.decode(ARGV[5])  -- with its status: a host swept offline is back
fields.lastHeartbeat = now
hset_table(KEYS[1], fields)
redis.call('ZADD', KEYS[3], now, wid)

local stale = 0
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[1], 'allowlist', ARGV[9], 'allowlistHash', ARGV[8])
elseif ARGV[8] ~= '' and ARGV[8] ~= w[6] then
  stale = 1  -- the host's list changed but it did not send it: ask for it
end

-- Acks first, so nothing acknowledged here is redelivered below. Unknown ids, other hosts'
-- mutations and repeated reports change nothing.
for _, id in ipairs(cjson.decode(ARGV[6])) do
  local m = mut_load(P, id)
  if m and m.workerHostId == wid and m.status == 'delivered' then
    mut_move(P, m, 'applied', now, {appliedAt = now}, 'applied')
    if m.op == 'pool.deleted' then
      local params = cjson.decode(m.params)
      local candidates = params.candidatePoolIds
      if type(candidates) ~= 'table' then candidates = {} end
      -- Redis 7's cjson encodes an empty table as `{}` (it has no encode_empty_table_as_object
      -- switch), which the daemon's Go `[]string` cannot decode: it then drops every heartbeat
      -- answer. An empty list is therefore written as the literal `[]`.
      local encoded = (#candidates > 0) and cjson.encode(candidates) or '[]'
      redis.call('HSET', KEYS[1], 'hostStatus', 'pool_deleted', 'candidatePoolIds', encoded,
        'recommendedAction', (#candidates > 0) and 'join_candidate_pool' or 'deregister')
    end
  end
end
for _, f in ipairs(cjson.decode(ARGV[7])) do
  local m = mut_load(P, f.id)
  if m and m.workerHostId == wid and m.status == 'delivered' then
    mut_move(P, m, 'failed', now, {failedAt = now, error = f.error}, 'failed', {error = f.error})
  end
end

-- A host whose registering key was revoked is told so and offered no work.
if w[5] and w[5] ~= '' and w[5] ~= 'legacy' then
  local revoked = redis.call('HGET', P.apikey .. w[5], 'revokedAt')
  if revoked and revoked ~= '' then
    redis.call('HSET', KEYS[1], 'hostStatus', 'unauthorized', 'recommendedAction', 'reregister')
  end
end

local out = {0, '', '', '', stale}
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local m = mut_load(P, id)
  local send = false
  if not m then
    redis.call('ZREM', KEYS[2], id)
  elseif m.status == 'pending' then
    send = mut_move(P, m, 'delivered', now,
      {deliveredAt = now, lastDeliveredAt = now, deliveryCount = m.deliveryCount + 1},
      'delivered', {deliveryCount = m.deliveryCount + 1})
  else
    send = mut_redeliver_or_fail(P, m, now, redeliver_after, max_deliveries)
  end
  if send then
    for _, v in ipairs({m.id, m.op, m.params, m.requestedAt, m.requestedBy}) do
      out[#out + 1] = v
    end
  end
end

local projects = cjson.decode(w[4])
local count = 0
if projects == 'all' then
  count = redis.call('ZCARD', P.org_queue .. org)
else
  for _, p in ipairs(projects) do count = count + redis.call('ZCARD', P.project_queue .. p) end
end
local hs = redis.call('HMGET', KEYS[1], 'hostStatus', 'recommendedAction', 'candidatePoolIds')
out[1], out[2], out[3], out[4] = count, hs[1] or 'ok', hs[2] or '', hs[3] or ''
return out
