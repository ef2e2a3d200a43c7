--! include lib_sessions
-- Pop and claim up to min(capacity - active, batch max) sessions, best score first.
-- KEYS: worker hash, worker sessions set, then the queue indexes the worker serves.
-- ARGV: prefixes JSON, now, batch max. Returns payloads; {-1} for an unknown worker.
local P = cjson.decode(ARGV[1])
local now = ARGV[2]
local w = redis.call('HMGET', KEYS[1], 'capacity', 'status', 'hostStatus', 'id')
if not w[1] then return {-1} end
if w[2] == 'deregistered' then return {} end
-- A host the platform has told anything but "ok" (pool deleted, unauthorized, ...) gets no work.
if w[3] and w[3] ~= '' and w[3] ~= 'ok' then return {} end
local want = math.min(tonumber(w[1]) - redis.call('SCARD', KEYS[2]), tonumber(ARGV[3]))
local out = {}
local rounds = 0
-- More than one round only when stale index entries were dropped.
while #out < want and rounds < 4 do
  rounds = rounds + 1
  local need = want - #out
  local cands = {}
  for i = 3, #KEYS do
    local r = redis.call('ZRANGE', KEYS[i], 0, need - 1, 'WITHSCORES')
    for j = 1, #r, 2 do cands[#cands + 1] = {r[j], tonumber(r[j + 1])} end
  end
  if #cands == 0 then break end
  table.sort(cands, function(a, b)
    if a[2] == b[2] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
  for i = 1, math.min(need, #cands) do
    local payload = claim_one(P, cands[i][1], w[4], now)
    if payload then out[#out + 1] = payload end
  end
end
return out
