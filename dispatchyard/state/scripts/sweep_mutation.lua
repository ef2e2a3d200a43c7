--! include lib_mutations
-- Sweep one in-flight mutation: fail it as undelivered once it has been delivered max times
-- and the redelivery window has passed with no report (a host that stopped heartbeating).
-- Redelivery itself happens on the host's next heartbeat.
-- ARGV: P JSON, mutation id, now, redeliver after (ms), max deliveries. Returns 1 if failed.
local P = cjson.decode(ARGV[1])
local m = mut_load(P, ARGV[2])
local now = tonumber(ARGV[3])
if not m or m.status ~= 'delivered' then
  redis.call('ZREM', P.inflight, ARGV[2])
  return 0
end
if m.deliveryCount < tonumber(ARGV[5]) then return 0 end
mut_redeliver_or_fail(P, m, now, tonumber(ARGV[4]), tonumber(ARGV[5]))
if m.status == 'failed' then return 1 end
return 0
