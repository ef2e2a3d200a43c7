-- Close an open ask with its outcome — an ack, a reply, an answer, a default answer on
-- timeout — and wake whoever waits on it. The first resolution wins: a closed ask is left as
-- it is.
-- KEYS: the ask hash, the trace list of the ask, the events stream, the open-asks index.
-- ARGV: inbound prefix, outbound prefix, fields JSON (written as given), now ISO, resolved
--       channel, correlation id, trace entry JSON, event fields JSON ({type, timestamp, data}),
--       seconds a closed ask is kept, trace TTL (s), events maxlen.
-- Returns 'ok', 'closed' or 'not_found' (nothing written for the last two).
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'not_found' end
if status == 'closed' then return 'closed' end
local flat = {'status', 'closed', 'closed_at', ARGV[4]}
for k, v in pairs(cjson.decode(ARGV[3])) do
  flat[#flat + 1] = k
  flat[#flat + 1] = tostring(v)
end
redis.call('HSET', KEYS[1], unpack(flat))
redis.call('EXPIRE', KEYS[1], ARGV[9])
local who = redis.call('HMGET', KEYS[1], 'to_peer_id', 'from_peer_id')
if who[1] then redis.call('ZREM', ARGV[1] .. who[1], ARGV[6]) end
if who[2] then redis.call('ZREM', ARGV[2] .. who[2], ARGV[6]) end
redis.call('ZREM', KEYS[4], ARGV[6])
redis.call('RPUSH', KEYS[2], ARGV[7])
redis.call('EXPIRE', KEYS[2], ARGV[10])
local event = cjson.decode(ARGV[8])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[11], '*',
  'type', event.type, 'timestamp', event.timestamp, 'data', event.data)
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 'ok'
