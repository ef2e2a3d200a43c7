--! include lib_common
-- Create an org if its slug is free.
-- KEYS: org slug key, org hash, orgs set. ARGV: org id, fields JSON.
-- Returns 1; refuses conflict when the slug is taken.
local slug_key, org_key, orgs_key = KEYS[1], KEYS[2], KEYS[3]
local org_id, fields_json = ARGV[1], ARGV[2]

if redis.call('SET', slug_key, org_id, 'NX') == false then
  return refuse('conflict', 'Org slug already exists')
end
hset_table(org_key, cjson.decode(fields_json))
redis.call('SADD', orgs_key, org_id)
return 1
