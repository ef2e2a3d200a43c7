-- Record one activity of a session's agent. Every event stamps `lastActivityAt` and its type;
-- only an event that names a tool moves the tool fields, and `toolSince` moves only when the
-- tool changes, so health can see one tool held for too long. A thought between two calls of
-- the same tool leaves `toolSince` where it was: a loop that narrates itself is still a loop.
-- KEYS: session record.
-- ARGV: host id, tool name ('' = the event names none), now, activity type ('' = not given).
-- Returns 1 | 0 (not found) | -1 (another host's).
local f = redis.call('HMGET', KEYS[1], 'workerId', 'lastTool', 'status')
if not f[3] then return 0 end
if f[1] ~= ARGV[1] then return -1 end
local now = ARGV[3]
if ARGV[2] ~= '' then
  if f[2] ~= ARGV[2] then redis.call('HSET', KEYS[1], 'lastTool', ARGV[2], 'toolSince', now) end
  redis.call('HSET', KEYS[1], 'lastToolAt', now)
end
redis.call('HSET', KEYS[1], 'lastActivityAt', now, 'lastActivityType', ARGV[4], 'updatedAt', now)
return 1
