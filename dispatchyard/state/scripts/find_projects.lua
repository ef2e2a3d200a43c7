--! keys project
-- Find an org's projects by id or by slug, all in one round trip (a registration names its
-- projects either way).
-- KEYS: for each ref in turn, the project hash named by it as an id, then the org's slug index
--       entry for it as a slug.
-- ARGV: org id.
-- Returns one flat field/value list per ref, empty when no project of the org has that id or
-- slug.
local org_id = ARGV[1]

local out = {}
for i = 1, #KEYS, 2 do
  local key = KEYS[i]
  if redis.call('HGET', key, 'orgId') ~= org_id then
    local id = redis.call('GET', KEYS[i + 1])
    key = id and K.project(id) or nil
  end
  if key and redis.call('HGET', key, 'orgId') == org_id then
    out[#out + 1] = redis.call('HGETALL', key)
  else
    out[#out + 1] = {}
  end
end
return out
