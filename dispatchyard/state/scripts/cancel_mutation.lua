--! include lib_common
--! include lib_mutations
-- Cancel a pending mutation. Atomic with heartbeat delivery: exactly one of them wins.
-- ARGV: mutation id, org id, now, cancelled-by.
-- Returns 1; refuses not_found (unknown, another org's) or conflict (`reason`:
-- 'already_<status>').
local id, org_id, now, by = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local m = mut_load(id)
if not m or m.orgId ~= org_id then return refuse('not_found', 'Mutation not found') end
if not mut_move(m, 'cancelled', now, {cancelledAt = now}, 'cancelled', {by = by}) then
  return refuse('conflict', 'Mutation is ' .. m.status, {reason = 'already_' .. m.status})
end
return 1
