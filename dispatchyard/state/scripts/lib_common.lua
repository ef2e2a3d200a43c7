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

-- True when `current` is in `allowed_json`, the JSON list of states the target may be reached
-- from (state/models.py `allowed_from` over the machine's table), so the check runs in the same
-- atomic step as the write.
local function may_move(allowed_json, current)
  for _, s in ipairs(cjson.decode(allowed_json)) do
    if s == current then return true end
  end
  return false
end

-- True when the table `table_json` ({state: [targets]}, a state machine of state/models.py)
-- lets `current` move to `target`, for scripts whose target is decided inside them.
local function may_reach(table_json, current, target)
  local targets = cjson.decode(table_json)[current]
  if not targets then return false end
  for _, s in ipairs(targets) do
    if s == target then return true end
  end
  return false
end
