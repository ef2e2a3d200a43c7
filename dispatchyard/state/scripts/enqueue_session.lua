--! keys session_status_counts
-- Enqueue a session: payload in work:items, score in work:queue and its indexes, record kept.
-- KEYS: work:items, work:queue, org queue, project queue, session record, org sessions,
--       project sessions.
-- ARGV: session id, payload JSON, score, queuedAt, then the record as field/value pairs.
-- Returns 1, or refuses (conflict) when the id exists.
--! include lib_common
local items_key, queue_key, org_queue_key, project_queue_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local record_key, org_sessions_key, project_sessions_key = KEYS[5], KEYS[6], KEYS[7]
local session_id, payload, score, queued_at = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local RECORD_FROM = 5

if redis.call('EXISTS', record_key) == 1 then
  return refuse('conflict', 'Session already exists: ' .. session_id)
end
redis.call('HSET', items_key, session_id, payload)
redis.call('ZADD', queue_key, score, session_id)
redis.call('ZADD', org_queue_key, score, session_id)
redis.call('ZADD', project_queue_key, score, session_id)
redis.call('HSET', record_key, unpack(ARGV, RECORD_FROM))
redis.call('ZADD', org_sessions_key, queued_at, session_id)
redis.call('ZADD', project_sessions_key, queued_at, session_id)
redis.call('HINCRBY', K.session_status_counts, 'queued', 1)
return 1
