--! include lib_common
--! keys asks_inbound asks_outbound asks_open events asks_resolved
-- Close an open ask with its outcome — an ack, a reply, an answer, a default answer on
-- timeout — and wake whoever waits on it. The first resolution wins: a closed ask is left as
-- it is.
-- KEYS: the ask hash, the trace list of the ask.
-- ARGV: correlation id, fields JSON (written as given), now ISO, trace entry JSON, event
--       fields JSON ({type, timestamp, data}), seconds a closed ask is kept, trace TTL (s),
--       events maxlen.
-- Returns 1; refuses not_found, or gone when it was closed already (nothing written).
local ask_key, trace_key = KEYS[1], KEYS[2]
local correlation_id, fields_json, now = ARGV[1], ARGV[2], ARGV[3]
local trace_entry, event_json, closed_kept_s = ARGV[4], ARGV[5], ARGV[6]
local trace_ttl_s, events_maxlen = ARGV[7], ARGV[8]

local status = redis.call('HGET', ask_key, 'status')
if not status then return refuse('not_found', 'Ask not found: ' .. correlation_id) end
if status == 'closed' then
  return refuse('gone', 'Ask ' .. correlation_id .. ' is already answered/closed.')
end
local flat = {'status', 'closed', 'closed_at', now}
for k, v in pairs(cjson.decode(fields_json)) do
  flat[#flat + 1] = k
  flat[#flat + 1] = tostring(v)
end
redis.call('HSET', ask_key, unpack(flat))
redis.call('EXPIRE', ask_key, closed_kept_s)
local who = redis.call('HMGET', ask_key, 'to_peer_id', 'from_peer_id')
if who[1] then redis.call('ZREM', K.asks_inbound(who[1]), correlation_id) end
if who[2] then redis.call('ZREM', K.asks_outbound(who[2]), correlation_id) end
redis.call('ZREM', K.asks_open, correlation_id)
redis.call('RPUSH', trace_key, trace_entry)
redis.call('EXPIRE', trace_key, trace_ttl_s)
local event = cjson.decode(event_json)
redis.call('XADD', K.events, 'MAXLEN', '~', events_maxlen, '*',
  'type', event.type, 'timestamp', event.timestamp, 'data', event.data)
redis.call('PUBLISH', K.asks_resolved, correlation_id)
return 1
