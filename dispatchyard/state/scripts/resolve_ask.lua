--! include lib_common lib_asks
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
close_ask(ask_key, trace_key, correlation_id, cjson.decode(fields_json), now, trace_entry,
  cjson.decode(event_json), closed_kept_s, trace_ttl_s, events_maxlen)
return 1
