--! keys attachment
-- Reserve an attachment's bytes against the store's cap, releasing expired ones first.
-- KEYS: total bytes, ledger, sizes, the new attachment's hash.
-- ARGV: id, size, total cap, now ms, expires ms, hash TTL ms, release batch, then the hash's
--       field/value pairs.
-- Returns {status, released id...}; status is 'ok', 'full' (nothing reserved) or 'taken' (the
-- id is in use; nothing reserved). Not refusals: the released files are deleted either way.
local total_key, ledger_key, sizes_key, attachment_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, size, cap, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local expires_ms, ttl_ms, batch = ARGV[5], ARGV[6], ARGV[7]
local FIELDS_FROM = 8

local released = {}
local expired = redis.call('ZRANGEBYSCORE', ledger_key, '-inf', now, 'LIMIT', 0, batch)
for _, old in ipairs(expired) do
  local old_size = tonumber(redis.call('HGET', sizes_key, old)) or 0
  redis.call('DECRBY', total_key, old_size)
  redis.call('HDEL', sizes_key, old)
  redis.call('ZREM', ledger_key, old)
  redis.call('DEL', K.attachment(old))
  released[#released + 1] = old
end
local used = tonumber(redis.call('GET', total_key)) or 0
local status = 'ok'
if redis.call('HEXISTS', sizes_key, id) == 1 or redis.call('EXISTS', attachment_key) == 1 then
  status = 'taken'
elseif used + size > cap then
  status = 'full'
else
  redis.call('INCRBY', total_key, size)
  redis.call('HSET', sizes_key, id, size)
  redis.call('ZADD', ledger_key, expires_ms, id)
  redis.call('HSET', attachment_key, unpack(ARGV, FIELDS_FROM))
  redis.call('PEXPIRE', attachment_key, ttl_ms)
end
local out = {status}
for _, old in ipairs(released) do out[#out + 1] = old end
return out
