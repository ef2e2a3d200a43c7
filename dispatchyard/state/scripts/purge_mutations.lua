--! include lib_common
--! include lib_mutations
--! keys host_mutations org_mutations
-- Retention: delete mutations final (applied, failed, cancelled) since the cutoff or before,
-- each with its audit history and every index entry: its host's open and all sets, the org's
-- list and per-status list, the in-flight set. An index entry whose mutation is not final
-- (never expected) is only dropped.
-- ARGV: cutoff (ms), then the mutation ids.
-- Returns the ids deleted.
local cutoff = tonumber(ARGV[1])
local IDS_FROM = 2

local final_key = K.final_at('mutations')
local purged = {}
for _, id in ipairs({unpack(ARGV, IDS_FROM)}) do
  local at = redis.call('ZSCORE', final_key, id)
  if at and tonumber(at) <= cutoff then
    local m = mut_load(id)
    if not m or next(MUTATION[m.status] or {false}) == nil then
      if m then
        redis.call('ZREM', K.host_open_mutations(m.workerHostId), id)
        redis.call('ZREM', K.host_mutations(m.workerHostId), id)
        redis.call('ZREM', K.org_mutations(m.orgId), id)
        redis.call('ZREM', K.org_mutations_in(m.orgId, m.status), id)
      end
      redis.call('ZREM', K.mutations_inflight, id)
      redis.call('DEL', K.mutation(id), K.mutation_history(id))
      purged[#purged + 1] = id
    end
    redis.call('ZREM', final_key, id)
  end
end
return purged
