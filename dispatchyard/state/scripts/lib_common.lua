-- Helpers shared by scripts (pasted in by `--! include lib_common`).

local function hgetall(key)
  local flat = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

local function hset_table(key, t)
  local flat = {}
  for k, v in pairs(t) do
    flat[#flat + 1] = k
    flat[#flat + 1] = tostring(v)
  end
  if #flat > 0 then redis.call('HSET', key, unpack(flat)) end
end

-- True when the state machine `machine` (a table of models.py, asked for with
-- `--! machines NAME`) lets a record in `current` move to `target`.
local function may_move(machine, current, target)
  -- `current` is false for a field that does not exist (Redis nil).
  local targets = current and machine[current]
  return targets ~= nil and targets ~= false and targets[target] == true
end

-- Refuse, writing nothing (call it before any write): an error reply that the Python side
-- raises as the StateError of `kind` (not_found, forbidden, conflict, gone, quota, too_large,
-- invalid, unavailable) with `message`, and `fields` as its extras (`state` is its own).
local function refuse(kind, message, fields)
  local body = {kind = kind, message = message}
  for k, v in pairs(fields or {}) do body[k] = v end
  return redis.error_reply('REFUSED ' .. cjson.encode(body))
end
