--! include lib_common
--! keys apikey_hash
-- Revoke an API key: drop its hash index and stamp revokedAt. Revoking again changes nothing.
-- KEYS: apikey record. ARGV: now (ms), org id.
-- Returns 1; refuses not_found (unknown, or another org's).
local key_key = KEYS[1]
local now, org_id = ARGV[1], ARGV[2]

local f = redis.call('HMGET', key_key, 'orgId', 'hash', 'revokedAt')
local key_org, hash, revoked_at = f[1], f[2], f[3]
if key_org ~= org_id then return refuse('not_found', 'Key not found') end
if revoked_at and revoked_at ~= '' then return 1 end
redis.call('DEL', K.apikey_hash(hash))
redis.call('HSET', key_key, 'revokedAt', now)
return 1
