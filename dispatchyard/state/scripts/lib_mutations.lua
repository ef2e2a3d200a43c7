-- Mutation moves shared by enqueue, cancel, heartbeat and the sweep.
-- P holds key prefixes from state/keys.py and T, the transition table from state/models.py.

local function mut_load(P, id)
  local f = redis.call('HMGET', P.mutation .. id, 'status', 'orgId', 'workerHostId', 'requestedAt',
    'deliveryCount', 'lastDeliveredAt', 'op', 'params', 'requestedBy')
  if not f[1] then return nil end
  return {id = id, status = f[1], orgId = f[2], workerHostId = f[3], requestedAt = f[4],
    deliveryCount = tonumber(f[5] or '0'), lastDeliveredAt = tonumber(f[6] or '0'), op = f[7],
    params = f[8], requestedBy = f[9]}
end

local function mut_event(P, id, now, event, detail)
  local e = {at = tonumber(now), event = event}
  if detail then for k, v in pairs(detail) do e[k] = v end end
  redis.call('RPUSH', P.history .. id, cjson.encode(e))
end

-- Apply one transition of the table T; returns false (and writes nothing) when T forbids it.
local function mut_move(P, m, to, now, fields, event, detail)
  local allowed = false
  for _, s in ipairs(P.T[m.status] or {}) do if s == to then allowed = true end end
  if not allowed then return false end
  local key = P.mutation .. m.id
  if m.status ~= to then
    redis.call('ZREM', P.org_mutations .. m.orgId .. ':' .. m.status, m.id)
    redis.call('ZADD', P.org_mutations .. m.orgId .. ':' .. to, m.requestedAt, m.id)
  end
  local flat = {'status', to}
  for k, v in pairs(fields or {}) do flat[#flat + 1] = k; flat[#flat + 1] = tostring(v) end
  redis.call('HSET', key, unpack(flat))
  if #(P.T[to] or {}) == 0 then
    -- Terminal: out of the host's open set and the sweep's in-flight set.
    redis.call('ZREM', P.open .. m.workerHostId, m.id)
    redis.call('ZREM', P.inflight, m.id)
  elseif to == 'delivered' then
    redis.call('ZADD', P.inflight, now, m.id)
  end
  mut_event(P, m.id, now, event or to, detail)
  m.status = to
  return true
end

-- A delivered mutation whose last delivery is older than the redelivery window: redeliver it,
-- or fail it as undelivered once it has been delivered max times. Returns true if redelivered.
local function mut_redeliver_or_fail(P, m, now, redeliver_after, max_deliveries)
  if m.status ~= 'delivered' or now - m.lastDeliveredAt < redeliver_after then return false end
  if m.deliveryCount >= max_deliveries then
    mut_move(P, m, 'failed', now, {failedAt = now, error = 'undelivered'}, 'failed',
      {error = 'undelivered', deliveryCount = m.deliveryCount})
    return false
  end
  m.deliveryCount = m.deliveryCount + 1
  return mut_move(P, m, 'delivered', now, {lastDeliveredAt = now, deliveryCount = m.deliveryCount},
    'redelivered', {deliveryCount = m.deliveryCount})
end
