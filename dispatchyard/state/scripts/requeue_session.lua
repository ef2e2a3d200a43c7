--! include lib_sessions
-- Nack: put a session the host claimed (not yet running) back in the queue.
-- KEYS: session record. ARGV: session id, host id, now.
-- Returns 1; refuses forbidden (another host holds it) or conflict (not claimed).
local session_key = KEYS[1]
local session_id, host_id, now = ARGV[1], ARGV[2], ARGV[3]

if requeue_one(session_id, host_id, now) then return 1 end
local f = redis.call('HMGET', session_key, 'status', 'workerId')
local status, holder = f[1], f[2]
if holder and holder ~= '' and holder ~= host_id then
  return refuse('forbidden', 'Session belongs to another worker')
end
return refuse('conflict',
  'Session is ' .. tostring(status) .. '; only a claimed session can be nacked')
