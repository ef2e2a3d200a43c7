--! include lib_common
--! include lib_mutations
--! keys host host_sessions host_jtis host_mutations org_hosts host_heartbeats host_machine
-- Retention: delete hosts deregistered since the cutoff or before, each with every index
-- entry: the record, its sessions and token sets, its mutation indexes, its place in the org's
-- list and the heartbeat set, and its machine index (when that still names it, so the same
-- machine registering again gets a new id). Mutations still open for it end first, as their
-- machine allows (pending -> cancelled, delivered -> failed `host_purged`), into their own
-- retention. An entry whose host registered again (never expected: registering drops it) is
-- only dropped.
-- ARGV: cutoff (ms), now (ms), the deregistered state, then the host ids.
-- Returns the ids deleted.
local cutoff, now, deregistered = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local IDS_FROM = 4

local final_key = K.final_at('hosts')
local purged = {}
for _, id in ipairs({unpack(ARGV, IDS_FROM)}) do
  local at = redis.call('ZSCORE', final_key, id)
  if at and tonumber(at) <= cutoff then
    local f = redis.call('HMGET', K.host(id), 'status', 'orgId', 'machineId')
    local status, org_id, machine_id = f[1], f[2], f[3]
    if not status or status == deregistered then
      for _, mid in ipairs(redis.call('ZRANGE', K.host_open_mutations(id), 0, -1)) do
        local m = mut_load(mid)
        if m and not mut_move(m, 'cancelled', now, {cancelledAt = now}, 'cancelled',
            {by = 'retention'}) then
          mut_move(m, 'failed', now, {failedAt = now, error = 'host_purged'}, 'failed',
            {error = 'host_purged'})
        end
      end
      redis.call('DEL', K.host(id), K.host_sessions(id), K.host_jtis(id),
        K.host_open_mutations(id), K.host_mutations(id))
      redis.call('ZREM', K.host_heartbeats, id)
      if org_id then
        redis.call('ZREM', K.org_hosts(org_id), id)
        if machine_id and machine_id ~= '' then
          local machine_key = K.host_machine(org_id, machine_id)
          if redis.call('GET', machine_key) == id then redis.call('DEL', machine_key) end
        end
      end
      purged[#purged + 1] = id
    end
    redis.call('ZREM', final_key, id)
  end
end
return purged
