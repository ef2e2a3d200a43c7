--! include lib_common
-- Create an org if its slug is free.
-- KEYS: org slug key, org hash, orgs set. ARGV: org id, fields JSON.
if redis.call('SET', KEYS[1], ARGV[1], 'NX') == false then return 0 end
hset_table(KEYS[2], cjson.decode(ARGV[2]))
redis.call('SADD', KEYS[3], ARGV[1])
return 1
