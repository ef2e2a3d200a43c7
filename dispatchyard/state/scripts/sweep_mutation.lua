--! include lib_common
--! include lib_mutations
-- Sweep one in-flight mutation of a host that stopped heartbeating: redelivery happens on the
-- host's heartbeats, so every redelivery window that passes without one is a delivery it
-- missed. Once the windows of all its remaining deliveries (and the last one's) have passed
-- with no report, it fails as undelivered, whether or not the host ever comes back.
-- ARGV: mutation id, now, redeliver after (ms), max deliveries. Returns 1 if it failed it.
local id, now = ARGV[1], tonumber(ARGV[2])
local redeliver_after, max_deliveries = tonumber(ARGV[3]), tonumber(ARGV[4])

local m = mut_load(id)
if not m or m.status ~= 'delivered' then
  redis.call('ZREM', K.mutations_inflight, id)
  return 0
end
local windows = math.max(max_deliveries - m.deliveryCount, 0) + 1
if now - m.lastDeliveredAt < redeliver_after * windows then return 0 end
mut_move(m, 'failed', now, {failedAt = now, error = 'undelivered'}, 'failed',
  {error = 'undelivered', deliveryCount = m.deliveryCount})
return 1
