--! include lib_common
-- A peer's WebSocket is held by shim process `node`: record it (expiring unless renewed) and
-- bring the peer online.
-- KEYS: peer hash, its connection key.
-- ARGV: P JSON (state prefix), peer id, node, ttl ms, now, PEER_TRANSITIONS JSON.
-- Returns {'ok', previous node or ''}, {'unknown'}, {'retired'} or {'refused'} (nothing
-- written for the last three).
local P = cjson.decode(ARGV[1])
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {'unknown'} end
if current == 'retired' then return {'retired'} end
if not may_reach(ARGV[6], current, 'online') then return {'refused'} end
local previous = redis.call('GET', KEYS[2]) or ''
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
local status = (current == 'busy' and previous ~= '') and 'busy' or 'online'
redis.call('HSET', KEYS[1], 'status', status, 'last_seen', ARGV[5])
if current ~= status then redis.call('SREM', P.state .. current, ARGV[2]) end
redis.call('SADD', P.state .. status, ARGV[2])
return {'ok', previous}
