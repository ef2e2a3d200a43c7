--! include lib_common
--! keys work_items work_queue session claim org_queue project_queue host_sessions
--! keys session_status_counts
--! machines session
-- Session queue moves shared by poll, claim, nack, deregister and the offline sweep. Every move
-- is checked against SESSION and counted in the status counts.

-- Move the count of sessions in `from` to `to`.
local function count_move(from, to)
  redis.call('HINCRBY', K.session_status_counts, from, -1)
  redis.call('HINCRBY', K.session_status_counts, to, 1)
end

-- Remove a session from the queue and all its indexes.
local function unqueue(session_id, org_id, project_id)
  redis.call('ZREM', K.work_queue, session_id)
  if org_id then redis.call('ZREM', K.org_queue(org_id), session_id) end
  if project_id then redis.call('ZREM', K.project_queue(project_id), session_id) end
end

-- Claim one queued session for a host. Returns its payload, or nil when it is not queued.
local function claim_one(session_id, host_id, now)
  local record = K.session(session_id)
  local f = redis.call('HMGET', record, 'orgId', 'projectId', 'status')
  local payload = redis.call('HGET', K.work_items, session_id)
  if not payload then
    -- A stale index entry (never expected): drop it so it cannot block the head of the queue.
    unqueue(session_id, f[1], f[2])
    return nil
  end
  if not may_move(SESSION, f[3], 'claimed') then return nil end
  if not redis.call('SET', K.claim(session_id), host_id, 'NX') then return nil end
  unqueue(session_id, f[1], f[2])
  redis.call('HDEL', K.work_items, session_id)
  -- The record keeps the payload from claim on, so a requeue can restore it.
  redis.call('HSET', record, 'status', 'claimed', 'workerId', host_id, 'claimedAt', now,
    'updatedAt', now, 'payload', payload)
  redis.call('SADD', K.host_sessions(host_id), session_id)
  count_move(f[3], 'claimed')
  return payload
end

-- Put a session the host claimed (not yet running) back in the queue with its original score.
-- Returns true when it moved.
local function requeue_one(session_id, host_id, now)
  local record = K.session(session_id)
  local f = redis.call('HMGET', record, 'status', 'workerId', 'payload', 'score', 'orgId',
    'projectId')
  local status, holder, payload, score, org_id, project_id = f[1], f[2], f[3], f[4], f[5], f[6]
  if holder ~= host_id or not payload or not may_move(SESSION, status, 'queued') then
    return false
  end
  redis.call('HSET', K.work_items, session_id, payload)
  redis.call('ZADD', K.work_queue, score, session_id)
  redis.call('ZADD', K.org_queue(org_id), score, session_id)
  redis.call('ZADD', K.project_queue(project_id), score, session_id)
  redis.call('DEL', K.claim(session_id))
  redis.call('HSET', record, 'status', 'queued', 'workerId', '', 'claimedAt', '', 'updatedAt', now)
  redis.call('SREM', K.host_sessions(host_id), session_id)
  count_move(status, 'queued')
  return true
end

-- Requeue every claimed-not-running session of a host; returns their ids.
local function requeue_host(host_id, now)
  local moved = {}
  for _, session_id in ipairs(redis.call('SMEMBERS', K.host_sessions(host_id))) do
    if requeue_one(session_id, host_id, now) then moved[#moved + 1] = session_id end
  end
  return moved
end
