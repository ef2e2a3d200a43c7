-- Reserve an attachment's bytes against the store's cap, releasing expired ones first.
-- KEYS: total bytes, ledger, sizes, the new attachment's hash.
-- ARGV: id, size, total cap, now ms, expires ms, hash TTL ms, attachment key prefix,
-- release batch, then the hash's field/value pairs.
-- Returns {status, bytes reserved after this call, released id...}; status is 'ok',
-- 'full' (nothing reserved) or 'taken' (the id is in use; nothing reserved).
local released = {}
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4], 'LIMIT', 0, ARGV[8])
for _, old in ipairs(expired) do
  local size = tonumber(redis.call('HGET', KEYS[3], old)) or 0
  redis.call('DECRBY', KEYS[1], size)
  redis.call('HDEL', KEYS[3], old)
  redis.call('ZREM', KEYS[2], old)
  redis.call('DEL', ARGV[7] .. old)
  released[#released + 1] = old
end
local used = tonumber(redis.call('GET', KEYS[1])) or 0
local id, size = ARGV[1], tonumber(ARGV[2])
local status = 'ok'
if redis.call('HEXISTS', KEYS[3], id) == 1 or redis.call('EXISTS', KEYS[4]) == 1 then
  status = 'taken'
elseif used + size > tonumber(ARGV[3]) then
  status = 'full'
else
  used = redis.call('INCRBY', KEYS[1], size)
  redis.call('HSET', KEYS[3], id, size)
  redis.call('ZADD', KEYS[2], ARGV[5], id)
  local fields = {}
  for i = 9, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('HSET', KEYS[4], unpack(fields))
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
end
local out = {status, used}
for _, old in ipairs(released) do out[#out + 1] = old end
return out
