-- Set a registered peer's status; never creates a peer.
-- KEYS: peer hash. ARGV: status, now (ms). Returns 1, or 0 for an unknown peer.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'last_seen', ARGV[2])
return 1
