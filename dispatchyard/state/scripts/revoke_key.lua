-- Revoke an API key: drop its hash index and stamp revokedAt.
-- KEYS: apikey record. ARGV: apikey hash-index prefix, now (ms), org id.
-- Returns 1 revoked, 2 already revoked, 0 not found (or another org's).
local f = redis.call('HMGET', KEYS[1], 'orgId', 'hash', 'revokedAt')
if f[1] ~= ARGV[3] then return 0 end
if f[3] and f[3] ~= '' then return 2 end
redis.call('DEL', ARGV[1] .. f[2])
redis.call('HSET', KEYS[1], 'revokedAt', ARGV[2])
return 1
