--! include lib_common
-- Mark a peer offline (POST /peers/{name}/offline), or retire it (`terminal`). Retiring also
-- severs its transport in the same step: the connection key goes and the holding shim process
-- is asked to send the error frame and close the socket. Removing the key here, not when the
-- socket ends, keeps that end from finding the peer still held (and moving it back to
-- offline). A plain offline leaves a live socket open, as repowire does; its next status frame
-- reports it again.
-- KEYS: peer hash, its connection key, the events stream.
-- ARGV: P JSON (state and node prefixes), peer id, now ms, '1' to retire, PEER_TRANSITIONS
--       JSON, fields JSON (written as given: the reason, source, detail), close message JSON,
--       event JSON ({type, timestamp, data: JSON without old_status}), events maxlen.
-- Returns {outcome, node that held the socket or '', processes that got the close}; outcome
-- 'ok', 'unknown' or 'refused' (the table forbids the move; nothing written). Marking a retired
-- peer offline (not terminal) is 'ok' and leaves it retired: only a registration whose agent
-- is alive brings it back.
local P = cjson.decode(ARGV[1])
local id, now, terminal = ARGV[2], ARGV[3], ARGV[4] == '1'
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {'unknown', '', 0} end
if current == 'retired' and not terminal then return {'ok', '', 0} end
local target = terminal and 'retired' or 'offline'
if not may_reach(ARGV[5], current, target) then return {'refused', '', 0} end
local holder = redis.call('GET', KEYS[2]) or ''
-- A peer stored online whose holder is gone was already offline (as reads show it).
local was = current
if (was == 'online' or was == 'busy') and holder == '' then was = 'offline' end
local flat = {'status', target, 'last_seen', now}
for k, v in pairs(cjson.decode(ARGV[6])) do
  flat[#flat + 1] = k
  flat[#flat + 1] = tostring(v)
end
if terminal then
  flat[#flat + 1] = 'retired_at'
  flat[#flat + 1] = now
end
redis.call('HSET', KEYS[1], unpack(flat))
if current ~= target then redis.call('SREM', P.state .. current, id) end
redis.call('SADD', P.state .. target, id)
local closed = 0
if terminal and holder ~= '' then
  redis.call('DEL', KEYS[2])
  closed = redis.call('PUBLISH', P.node .. holder, ARGV[7])
end
-- As repowire: the event says why a peer that was up went down.
if was ~= 'offline' and was ~= 'retired' then
  local event = cjson.decode(ARGV[8])
  local data = cjson.decode(event.data)
  data.old_status = was
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[9], '*',
    'type', event.type, 'timestamp', event.timestamp, 'data', cjson.encode(data))
end
return {'ok', holder, closed}
