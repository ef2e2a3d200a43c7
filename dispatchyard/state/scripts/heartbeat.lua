--! include lib_common
--! include lib_mutations
--! keys apikey org_queue project_queue hosts_offline
--! machines host
-- One heartbeat, atomically: record the host's report, apply its mutation acks, deliver (or
-- redeliver) its open mutations, and read what the response needs.
-- KEYS: host hash, host open mutations, heartbeats zset.
-- ARGV: now, redeliver after (ms), max deliveries, host fields JSON (with the status it moves
--       to), applied ids JSON, failures JSON [{id, error}], allowlistHash ('' = none),
--       allowlist JSON ('' = none), the caller's org id, the caller's token revocation key
--       ('' = nothing to check).
-- Returns {pendingWorkCount, hostStatus, recommendedAction, candidatePoolIds JSON,
--   allowlistStale, then id, op, params, requestedAt, requestedBy per delivered mutation};
--   refuses unauthorized (a revoked token) or not_found (an unknown host, another org's, or
--   one HOST does not let move: deregistered).
local host_key, open_key, heartbeats_key = KEYS[1], KEYS[2], KEYS[3]
local now, redeliver_after, max_deliveries = tonumber(ARGV[1]), tonumber(ARGV[2]),
  tonumber(ARGV[3])
local fields_json, applied_json, failures_json = ARGV[4], ARGV[5], ARGV[6]
local allowlist_hash, allowlist, org_id, revoked_key = ARGV[7], ARGV[8], ARGV[9], ARGV[10]

if revoked_key ~= '' and redis.call('EXISTS', revoked_key) == 1 then
  return refuse('unauthorized', 'Unauthorized')
end
local w = redis.call('HMGET', host_key, 'id', 'orgId', 'status', 'projects', 'regKeyId',
  'allowlistHash', 'hostStatus')
local host_id, host_org, status, projects, reg_key_id, stored_hash = w[1], w[2], w[3], w[4],
  w[5], w[6]
local fields = cjson.decode(fields_json)  -- with its status: a host swept offline is back
-- A deregistered host is unknown here: HOST lets only a registration bring it back.
if not host_id or host_org ~= org_id or status == 'deregistered'
    or not may_move(HOST, status, fields.status) then
  return refuse('not_found', 'Worker not found')
end

fields.lastHeartbeat = now
hset_table(host_key, fields)
redis.call('ZADD', heartbeats_key, now, host_id)
redis.call('ZREM', K.hosts_offline, host_id)

local stale = 0
if allowlist ~= '' then
  redis.call('HSET', host_key, 'allowlist', allowlist, 'allowlistHash', allowlist_hash)
elseif allowlist_hash ~= '' and allowlist_hash ~= stored_hash then
  stale = 1  -- the host's list changed but it did not send it: ask for it
end

-- Acks first, so nothing acknowledged here is redelivered below. Unknown ids, other hosts'
-- mutations and repeated reports change nothing (MUTATION refuses the move).
for _, id in ipairs(cjson.decode(applied_json)) do
  local m = mut_load(id)
  if m and m.workerHostId == host_id and mut_move(m, 'applied', now, {appliedAt = now}) then
    if m.op == 'pool.deleted' then
      local params = cjson.decode(m.params)
      local candidates = params.candidatePoolIds
      if type(candidates) ~= 'table' then candidates = {} end
      -- Redis 7's cjson encodes an empty table as `{}` (it has no encode_empty_table_as_object
      -- switch), which the daemon's Go `[]string` cannot decode: it then drops every heartbeat
      -- answer. An empty list is therefore written as the literal `[]`.
      local encoded = (#candidates > 0) and cjson.encode(candidates) or '[]'
      redis.call('HSET', host_key, 'hostStatus', 'pool_deleted', 'candidatePoolIds', encoded,
        'recommendedAction', (#candidates > 0) and 'join_candidate_pool' or 'deregister')
    end
  end
end
for _, f in ipairs(cjson.decode(failures_json)) do
  local m = mut_load(f.id)
  if m and m.workerHostId == host_id then
    mut_move(m, 'failed', now, {failedAt = now, error = f.error}, 'failed', {error = f.error})
  end
end

-- A host whose registering key was revoked is told so and offered no work.
if reg_key_id and reg_key_id ~= '' and reg_key_id ~= 'legacy' then
  local revoked = redis.call('HGET', K.apikey(reg_key_id), 'revokedAt')
  if revoked and revoked ~= '' then
    redis.call('HSET', host_key, 'hostStatus', 'unauthorized', 'recommendedAction', 'reregister')
  end
end

local out = {0, '', '', '', stale}
for _, id in ipairs(redis.call('ZRANGE', open_key, 0, -1)) do
  local m = mut_load(id)
  local send = false
  if not m then
    redis.call('ZREM', open_key, id)
  elseif m.status == 'pending' then
    send = mut_move(m, 'delivered', now,
      {deliveredAt = now, lastDeliveredAt = now, deliveryCount = m.deliveryCount + 1},
      'delivered', {deliveryCount = m.deliveryCount + 1})
  else
    send = mut_redeliver_or_fail(m, now, redeliver_after, max_deliveries)
  end
  if send then
    for _, v in ipairs({m.id, m.op, m.params, m.requestedAt, m.requestedBy}) do
      out[#out + 1] = v
    end
  end
end

local served = cjson.decode(projects)
local count = 0
if served == 'all' then
  count = redis.call('ZCARD', K.org_queue(host_org))
else
  for _, p in ipairs(served) do count = count + redis.call('ZCARD', K.project_queue(p)) end
end
local hs = redis.call('HMGET', host_key, 'hostStatus', 'recommendedAction', 'candidatePoolIds')
out[1], out[2], out[3], out[4] = count, hs[1] or 'ok', hs[2] or '', hs[3] or ''
return out
