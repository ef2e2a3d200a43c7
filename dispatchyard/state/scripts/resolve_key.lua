-- Look an API key up by the SHA-256 of its secret, in one round trip.
-- KEYS: apikey hash index. ARGV: apikey record prefix. Returns the record as a flat list.
local id = redis.call('GET', KEYS[1])
if not id then return {} end
return redis.call('HGETALL', ARGV[1] .. id)
