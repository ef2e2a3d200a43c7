--! include lib_mutations
-- Cancel a pending mutation. Atomic with heartbeat delivery: exactly one of them wins.
-- ARGV: P JSON, mutation id, org id, now, cancelled-by.
-- Returns 'cancelled' | 'not_found' | 'already_<status>'.
local P = cjson.decode(ARGV[1])
local m = mut_load(P, ARGV[2])
if not m or m.orgId ~= ARGV[3] then return 'not_found' end
if mut_move(P, m, 'cancelled', ARGV[4], {cancelledAt = ARGV[4]}, 'cancelled', {by = ARGV[5]}) then
  return 'cancelled'
end
return 'already_' .. m.status
