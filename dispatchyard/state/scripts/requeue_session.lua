--! include lib_sessions
-- Nack: put a session the host claimed (not yet running) back in the queue.
-- KEYS: session record. ARGV: prefixes JSON, session id, host id, now.
-- Returns 1 requeued, 0 not claimed by this host.
local P = cjson.decode(ARGV[1])
if requeue_one(P, ARGV[2], ARGV[3], ARGV[4]) then return 1 end
return 0
