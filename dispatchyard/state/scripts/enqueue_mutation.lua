--! include lib_common
--! include lib_mutations
-- Queue a mutation for a host: record, indexes, first audit entry.
-- KEYS: host hash. ARGV: P JSON, mutation id, now, record JSON.
-- Returns 1, or 0 when the host is unknown / deregistered / another org's.
local P = cjson.decode(ARGV[1])
local id, now = ARGV[2], ARGV[3]
local rec = cjson.decode(ARGV[4])
local w = redis.call('HMGET', KEYS[1], 'orgId', 'status')
if w[1] ~= rec.orgId or w[2] == 'deregistered' then return 0 end
hset_table(P.mutation .. id, rec)
redis.call('ZADD', P.open .. rec.workerHostId, now, id)
redis.call('ZADD', P.host_all .. rec.workerHostId, now, id)
redis.call('ZADD', P.org_mutations .. rec.orgId, now, id)
redis.call('ZADD', P.org_mutations .. rec.orgId .. ':pending', now, id)
mut_event(P, id, now, 'requested', {by = rec.requestedBy})
return 1
