--! include lib_common
-- Record one activity of a session's agent. Every event stamps `lastActivityAt` and its type;
-- only an event that names a tool moves the tool fields, and `toolSince` moves only when the
-- tool changes, so health can see one tool held for too long. A thought between two calls of
-- the same tool leaves `toolSince` where it was: a loop that narrates itself is still a loop.
-- KEYS: session record.
-- ARGV: host id, tool name ('' = the event names none), now, activity type ('' = not given).
-- Returns 1; refuses not_found or forbidden (another host's).
local session_key = KEYS[1]
local host_id, tool, now, activity_type = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local f = redis.call('HMGET', session_key, 'workerId', 'lastTool', 'status')
local holder, last_tool, status = f[1], f[2], f[3]
if not status then return refuse('not_found', 'Session not found') end
if holder ~= host_id then return refuse('forbidden', 'Session belongs to another worker') end
if tool ~= '' then
  if last_tool ~= tool then redis.call('HSET', session_key, 'lastTool', tool, 'toolSince', now) end
  redis.call('HSET', session_key, 'lastToolAt', now)
end
redis.call('HSET', session_key, 'lastActivityAt', now, 'lastActivityType', activity_type,
  'updatedAt', now)
return 1
