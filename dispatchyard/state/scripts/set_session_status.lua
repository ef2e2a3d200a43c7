--! include lib_common
-- Move a session along its state machine (the table lives in state/models.py; the caller passes
-- the states the target may be reached from).
-- KEYS: session record, host sessions set, the status counts.
-- ARGV: host id, new status, allowed-from (comma list), now, extra fields JSON, terminal (0/1).
-- Returns {'ok', record...} | {'not_found'} | {'forbidden'} | {'illegal', current}.
local f = redis.call('HMGET', KEYS[1], 'status', 'workerId', 'startedAt', 'orgId')
if not f[1] then return {'not_found'} end
if f[2] ~= ARGV[1] then return {'forbidden'} end
local current, target, now = f[1], ARGV[2], ARGV[4]
if current ~= target then
  local allowed = false
  for s in string.gmatch(ARGV[3], '[^,]+') do if s == current then allowed = true end end
  if not allowed then return {'illegal', current} end
end
local fields = cjson.decode(ARGV[5])
fields['status'] = target
fields['updatedAt'] = now
if target == 'running' and (not f[3] or f[3] == '') then fields['startedAt'] = now end
if ARGV[6] == '1' then
  if current ~= target then fields['finishedAt'] = now end
  redis.call('SREM', KEYS[2], redis.call('HGET', KEYS[1], 'id'))
end
hset_table(KEYS[1], fields)
if current ~= target then
  redis.call('HINCRBY', KEYS[3], current, -1)
  redis.call('HINCRBY', KEYS[3], target, 1)
end
local out = {'ok'}
for _, v in ipairs(redis.call('HGETALL', KEYS[1])) do out[#out + 1] = v end
return out
