-- Release: give back one attachment's reservation (its file could not be written).
-- KEYS: total bytes, ledger, sizes, the attachment's hash. ARGV: id. Returns 1, or 0 if unknown.
local size = redis.call('HGET', KEYS[3], ARGV[1])
if not size then return 0 end
redis.call('DECRBY', KEYS[1], size)
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[4])
return 1
