--! include lib_common
-- Create a project if its slug is free in the org.
-- KEYS: project slug key, project hash, org projects zset. ARGV: project id, createdAt, fields JSON.
if redis.call('SET', KEYS[1], ARGV[1], 'NX') == false then return 0 end
hset_table(KEYS[2], cjson.decode(ARGV[3]))
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
