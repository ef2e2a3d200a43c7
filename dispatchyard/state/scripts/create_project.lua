--! include lib_common
-- Create a project if its slug is free in the org.
-- KEYS: project slug key, project hash, org projects zset. ARGV: project id, createdAt,
-- fields JSON (with the slug).
-- Returns 1; refuses conflict when the slug is taken.
local slug_key, project_key, org_projects_key = KEYS[1], KEYS[2], KEYS[3]
local project_id, created_at, fields_json = ARGV[1], ARGV[2], ARGV[3]

local fields = cjson.decode(fields_json)
if redis.call('SET', slug_key, project_id, 'NX') == false then
  return refuse('conflict', 'Project slug already exists: ' .. fields.slug)
end
hset_table(project_key, fields)
redis.call('ZADD', org_projects_key, created_at, project_id)
return 1
