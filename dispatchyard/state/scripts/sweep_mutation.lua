--! include lib_common
--! include lib_mutations
-- Sweep one in-flight mutation: fail it as undelivered once it has been delivered max times
-- and the redelivery window has passed with no report (a host that stopped heartbeating).
-- Redelivery itself happens on the host's next heartbeat.
-- ARGV: mutation id, now, redeliver after (ms), max deliveries. Returns 1 if it failed it.
local id, now = ARGV[1], tonumber(ARGV[2])
local redeliver_after, max_deliveries = tonumber(ARGV[3]), tonumber(ARGV[4])

local m = mut_load(id)
if not m or m.status ~= 'delivered' then
  redis.call('ZREM', K.mutations_inflight, id)
  return 0
end
if m.deliveryCount < max_deliveries then return 0 end
mut_redeliver_or_fail(m, now, redeliver_after, max_deliveries)
if m.status == 'failed' then return 1 end
return 0
