-- Session queue moves shared by poll, claim, nack, deregister and the offline sweep.
-- P is the table of key names/prefixes handed in from state/keys.py.

-- Remove a session from the queue and all its indexes.
local function unqueue(P, sid, org, prj)
  redis.call('ZREM', P.queue, sid)
  if org then redis.call('ZREM', P.org_queue .. org, sid) end
  if prj then redis.call('ZREM', P.project_queue .. prj, sid) end
end

-- Claim one queued session for a host. Returns its payload, or nil when it is not queued.
local function claim_one(P, sid, wid, now)
  local rec = P.session .. sid
  local f = redis.call('HMGET', rec, 'orgId', 'projectId')
  local payload = redis.call('HGET', P.items, sid)
  if not payload then
    -- A stale index entry (never expected): drop it so it cannot block the head of the queue.
    unqueue(P, sid, f[1], f[2])
    return nil
  end
  if not redis.call('SET', P.claim .. sid, wid, 'NX') then return nil end
  unqueue(P, sid, f[1], f[2])
  redis.call('HDEL', P.items, sid)
  -- The record keeps the payload from claim on, so a requeue can restore it.
  redis.call('HSET', rec, 'status', 'claimed', 'workerId', wid, 'claimedAt', now, 'updatedAt', now,
    'payload', payload)
  redis.call('SADD', P.host_sessions .. wid, sid)
  redis.call('HINCRBY', P.status_counts, 'queued', -1)
  redis.call('HINCRBY', P.status_counts, 'claimed', 1)
  return payload
end

-- Put a claimed-but-not-running session back in the queue with its original score.
-- Returns true when it moved.
local function requeue_one(P, sid, wid, now)
  local rec = P.session .. sid
  local f = redis.call('HMGET', rec, 'status', 'workerId', 'payload', 'score', 'orgId', 'projectId')
  if f[1] ~= 'claimed' or f[2] ~= wid or not f[3] then return false end
  redis.call('HSET', P.items, sid, f[3])
  redis.call('ZADD', P.queue, f[4], sid)
  redis.call('ZADD', P.org_queue .. f[5], f[4], sid)
  redis.call('ZADD', P.project_queue .. f[6], f[4], sid)
  redis.call('DEL', P.claim .. sid)
  redis.call('HSET', rec, 'status', 'queued', 'workerId', '', 'claimedAt', '', 'updatedAt', now)
  redis.call('SREM', P.host_sessions .. wid, sid)
  redis.call('HINCRBY', P.status_counts, 'claimed', -1)
  redis.call('HINCRBY', P.status_counts, 'queued', 1)
  return true
end

-- Requeue every claimed-not-running session of a host; returns their ids.
local function requeue_host(P, wid, now)
  local moved = {}
  for _, sid in ipairs(redis.call('SMEMBERS', P.host_sessions .. wid)) do
    if requeue_one(P, sid, wid, now) then moved[#moved + 1] = sid end
  end
  return moved
end
