--! include lib_common
-- Register a peer; the same name in the same circle keeps its peer id.
-- KEYS: name index (circle, name), peers zset, peers-named set, pane index ('' = no pane).
-- ARGV: peer prefix, candidate id, now, fields JSON. Returns the peer id.
local id = redis.call('GET', KEYS[1])
if not id then
  id = ARGV[2]
  redis.call('SET', KEYS[1], id)
end
local fields = cjson.decode(ARGV[4])
fields['peer_id'] = id
if redis.call('EXISTS', ARGV[1] .. id) == 0 then fields['registered_at'] = ARGV[3] end
hset_table(ARGV[1] .. id, fields)
redis.call('ZADD', KEYS[2], 'NX', ARGV[3], id)
redis.call('SADD', KEYS[3], id)
if KEYS[4] ~= '' then redis.call('SET', KEYS[4], id) end
return id
