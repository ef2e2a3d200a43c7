-- Closing an open ask (pasted in by `--! include lib_asks`; the script asks for the keys
-- asks_inbound asks_outbound asks_open events asks_resolved).

-- Close the ask: `fields` (a table: answer, reply_text, close_reason, ...) written beside
-- its closed status, its indexes left, the `stage` entry (JSON) traced, `event` ({type,
-- timestamp, data}) logged, and its id published so a waiter on any shim process wakes.
local function close_ask(ask_key, trace_key, correlation_id, fields, now, stage, event,
                         closed_kept_s, trace_ttl_s, events_maxlen)
  local flat = {'status', 'closed', 'closed_at', now}
  for k, v in pairs(fields) do
    flat[#flat + 1] = k
    flat[#flat + 1] = tostring(v)
  end
  redis.call('HSET', ask_key, unpack(flat))
  redis.call('EXPIRE', ask_key, closed_kept_s)
  local who = redis.call('HMGET', ask_key, 'to_peer_id', 'from_peer_id')
  if who[1] then redis.call('ZREM', K.asks_inbound(who[1]), correlation_id) end
  if who[2] then redis.call('ZREM', K.asks_outbound(who[2]), correlation_id) end
  redis.call('ZREM', K.asks_open, correlation_id)
  redis.call('RPUSH', trace_key, stage)
  redis.call('EXPIRE', trace_key, trace_ttl_s)
  redis.call('XADD', K.events, 'MAXLEN', '~', events_maxlen, '*',
    'type', event.type, 'timestamp', event.timestamp, 'data', event.data)
  redis.call('PUBLISH', K.asks_resolved, correlation_id)
end
