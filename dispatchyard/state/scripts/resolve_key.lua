--! keys apikey
-- Look an API key up by the SHA-256 of its secret, in one round trip.
-- KEYS: apikey hash index. Returns the record as a flat list ({} when unknown).
local hash_key = KEYS[1]

local id = redis.call('GET', hash_key)
if not id then return {} end
return redis.call('HGETALL', K.apikey(id))
