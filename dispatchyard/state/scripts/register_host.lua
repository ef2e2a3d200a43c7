--! include lib_common
--! keys host final_at hosts_offline
--! machines host
-- Register a host; the same machineId in the same org keeps its host id.
-- KEYS: machine index (or '' when no machineId), org hosts zset, heartbeats zset.
-- ARGV: candidate id, now, fields JSON (with the status it moves to).
-- Returns the host id; refuses conflict when HOST forbids the move.
local machine_key, org_hosts_key, heartbeats_key = KEYS[1], KEYS[2], KEYS[3]
local candidate_id, now, fields_json = ARGV[1], ARGV[2], ARGV[3]

local existing = machine_key ~= '' and redis.call('GET', machine_key)
local host_id = existing or candidate_id
local host_key = K.host(host_id)
local fields = cjson.decode(fields_json)
local current = redis.call('HGET', host_key, 'status')
if current and not may_move(HOST, current, fields.status) then
  return refuse('conflict', 'Worker cannot be registered again from its current state',
    {state = current})
end
if machine_key ~= '' and not existing then redis.call('SET', machine_key, host_id) end
fields['id'] = host_id
if not current then
  fields['registeredAt'] = now
  fields['hostStatus'] = 'ok'
end
hset_table(host_key, fields)
-- A deregistered host registering again is not final any more.
redis.call('ZREM', K.final_at('hosts'), host_id)
redis.call('ZADD', org_hosts_key, 'NX', now, host_id)
redis.call('ZADD', heartbeats_key, now, host_id)
redis.call('ZREM', K.hosts_offline, host_id)
return host_id
