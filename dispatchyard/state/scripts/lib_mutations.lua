--! keys mutation mutation_history host_open_mutations org_mutations_in mutations_inflight
--! keys final_at
--! machines mutation
-- Mutation moves shared by enqueue, cancel, heartbeat and the sweep. Every move is checked
-- against MUTATION and leaves an audit entry.

local function mut_load(id)
  local f = redis.call('HMGET', K.mutation(id), 'status', 'orgId', 'workerHostId',
    'requestedAt', 'deliveryCount', 'lastDeliveredAt', 'op', 'params', 'requestedBy')
  if not f[1] then return nil end
  return {id = id, status = f[1], orgId = f[2], workerHostId = f[3], requestedAt = f[4],
    deliveryCount = tonumber(f[5] or '0'), lastDeliveredAt = tonumber(f[6] or '0'), op = f[7],
    params = f[8], requestedBy = f[9]}
end

local function mut_event(id, now, event, detail)
  local e = {at = tonumber(now), event = event}
  if detail then for k, v in pairs(detail) do e[k] = v end end
  redis.call('RPUSH', K.mutation_history(id), cjson.encode(e))
end

-- Apply one move of MUTATION; returns false (and writes nothing) when MUTATION forbids it.
local function mut_move(m, to, now, fields, event, detail)
  if not may_move(MUTATION, m.status, to) then return false end
  if m.status ~= to then
    redis.call('ZREM', K.org_mutations_in(m.orgId, m.status), m.id)
    redis.call('ZADD', K.org_mutations_in(m.orgId, to), m.requestedAt, m.id)
  end
  local flat = {'status', to}
  for k, v in pairs(fields or {}) do flat[#flat + 1] = k; flat[#flat + 1] = tostring(v) end
  redis.call('HSET', K.mutation(m.id), unpack(flat))
  if next(MUTATION[to]) == nil then
    -- Final: out of the host's open set and the sweep's in-flight set, into the retention
    -- index.
    redis.call('ZREM', K.host_open_mutations(m.workerHostId), m.id)
    redis.call('ZREM', K.mutations_inflight, m.id)
    redis.call('ZADD', K.final_at('mutations'), now, m.id)
  elseif to == 'delivered' then
    redis.call('ZADD', K.mutations_inflight, now, m.id)
  end
  mut_event(m.id, now, event or to, detail)
  m.status = to
  return true
end

-- A delivered mutation whose last delivery is older than the redelivery window: redeliver it,
-- or fail it as undelivered once it has been delivered max times. Returns true if redelivered.
local function mut_redeliver_or_fail(m, now, redeliver_after, max_deliveries)
  if m.status ~= 'delivered' or now - m.lastDeliveredAt < redeliver_after then return false end
  if m.deliveryCount >= max_deliveries then
    mut_move(m, 'failed', now, {failedAt = now, error = 'undelivered'}, 'failed',
      {error = 'undelivered', deliveryCount = m.deliveryCount})
    return false
  end
  m.deliveryCount = m.deliveryCount + 1
  return mut_move(m, 'delivered', now, {lastDeliveredAt = now, deliveryCount = m.deliveryCount},
    'redelivered', {deliveryCount = m.deliveryCount})
end
