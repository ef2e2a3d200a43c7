--! include lib_common
-- Register a worker; the same machineId in the same org keeps its worker id.
-- KEYS: machine index (or '' when no machineId), org workers zset, heartbeats zset.
-- ARGV: worker prefix, candidate id, now, fields JSON.
local wid = ARGV[2]
if KEYS[1] ~= '' then
  local existing = redis.call('GET', KEYS[1])
  if existing then wid = existing else redis.call('SET', KEYS[1], wid) end
end
local key = ARGV[1] .. wid
local fields = cjson.decode(ARGV[4])
fields['id'] = wid
if redis.call('EXISTS', key) == 0 then
  fields['registeredAt'] = ARGV[3]
  fields['hostStatus'] = 'ok'
end
hset_table(key, fields)
redis.call('ZADD', KEYS[2], 'NX', ARGV[3], wid)
redis.call('ZADD', KEYS[3], ARGV[3], wid)
return wid
