--! include lib_common
-- Register a host; the same machineId in the same org keeps its host id.
-- KEYS: machine index (or '' when no machineId), org hosts zset, heartbeats zset.
-- ARGV: host prefix, candidate id, now, fields JSON (status: the initial state), the states
--       that status may be reached from (JSON list).
-- Returns the host id, or nil (nothing written) when the host's state forbids the move.
local wid = ARGV[2]
local existing = KEYS[1] ~= '' and redis.call('GET', KEYS[1])
if existing then wid = existing end
local key = ARGV[1] .. wid
local current = redis.call('HGET', key, 'status')
if current and not may_move(ARGV[5], current) then return false end
if KEYS[1] ~= '' and not existing then redis.call('SET', KEYS[1], wid) end
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
