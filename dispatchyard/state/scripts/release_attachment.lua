-- Release: give back one attachment's reservation (its file could not be written).
-- KEYS: total bytes, ledger, sizes, the attachment's hash. ARGV: id.
-- Returns 1, or 0 if it held no reservation.
local total_key, ledger_key, sizes_key, attachment_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id = ARGV[1]

local size = redis.call('HGET', sizes_key, id)
if not size then return 0 end
redis.call('DECRBY', total_key, size)
redis.call('HDEL', sizes_key, id)
redis.call('ZREM', ledger_key, id)
redis.call('DEL', attachment_key)
return 1
