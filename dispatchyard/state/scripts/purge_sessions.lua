--! include lib_common
--! keys session claim work_items work_queue org_queue project_queue org_sessions
--! keys project_sessions host_sessions session_status_counts final_at
--! machines session
-- Retention: delete sessions final since the cutoff or before, each with every index entry:
-- the record, its claim marker, its place in the org and project lists, any queue entry left,
-- its host's set, and its status count. The retention index is written in the same step as
-- the move into a final status, so it is the truth; an entry whose session is not final (never
-- expected) is only dropped.
-- ARGV: cutoff (ms), then the session ids.
-- Returns the ids deleted.
local cutoff = tonumber(ARGV[1])
local IDS_FROM = 2

local final_key = K.final_at('sessions')
local purged = {}
for _, id in ipairs({unpack(ARGV, IDS_FROM)}) do
  local at = redis.call('ZSCORE', final_key, id)
  if at and tonumber(at) <= cutoff then
    local key = K.session(id)
    local f = redis.call('HMGET', key, 'status', 'orgId', 'projectId', 'workerId')
    local status, org_id, project_id, host_id = f[1], f[2], f[3], f[4]
    if not status or next(SESSION[status] or {false}) == nil then
      redis.call('DEL', key, K.claim(id))
      redis.call('HDEL', K.work_items, id)
      redis.call('ZREM', K.work_queue, id)
      if org_id then
        redis.call('ZREM', K.org_sessions(org_id), id)
        redis.call('ZREM', K.org_queue(org_id), id)
      end
      if project_id then
        redis.call('ZREM', K.project_sessions(project_id), id)
        redis.call('ZREM', K.project_queue(project_id), id)
      end
      if host_id and host_id ~= '' then redis.call('SREM', K.host_sessions(host_id), id) end
      if status then redis.call('HINCRBY', K.session_status_counts, status, -1) end
      purged[#purged + 1] = id
    end
    redis.call('ZREM', final_key, id)
  end
end
return purged
