--! include lib_common
--! include lib_mutations
--! keys host_mutations org_mutations
-- Queue a mutation for a host: record, indexes, first audit entry.
-- KEYS: host hash. ARGV: mutation id, now, record JSON (with its initial status).
-- Returns 1; refuses not_found when the host is unknown, deregistered or another org's.
local host_key = KEYS[1]
local id, now, record_json = ARGV[1], ARGV[2], ARGV[3]

local record = cjson.decode(record_json)
local w = redis.call('HMGET', host_key, 'orgId', 'status')
if w[1] ~= record.orgId or w[2] == 'deregistered' then
  return refuse('not_found', 'Worker host not found')
end
hset_table(K.mutation(id), record)
redis.call('ZADD', K.host_open_mutations(record.workerHostId), now, id)
redis.call('ZADD', K.host_mutations(record.workerHostId), now, id)
redis.call('ZADD', K.org_mutations(record.orgId), now, id)
redis.call('ZADD', K.org_mutations_in(record.orgId, record.status), now, id)
mut_event(id, now, 'requested', {by = record.requestedBy})
return 1
