-- Enqueue a session: payload in work:items, score in work:queue and its indexes, record kept.
-- KEYS: work:items, work:queue, org queue, project queue, session record, org sessions,
--       project sessions, the status counts.
-- ARGV: session id, payload JSON, score, queuedAt, then the record as field/value pairs.
-- Returns 0 when the id exists.
if redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
local sid = ARGV[1]
redis.call('HSET', KEYS[1], sid, ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], sid)
redis.call('ZADD', KEYS[3], ARGV[3], sid)
redis.call('ZADD', KEYS[4], ARGV[3], sid)
redis.call('HSET', KEYS[5], unpack(ARGV, 5))
redis.call('ZADD', KEYS[6], ARGV[4], sid)
redis.call('ZADD', KEYS[7], ARGV[4], sid)
redis.call('HINCRBY', KEYS[8], 'queued', 1)
return 1
