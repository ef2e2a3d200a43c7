--! include lib_common
--! keys job_docs job_summaries job jobs_all jobs_by_state jobs_by jobs_due jobs_leases
--! keys jobs_expiry jobs_deadlines trace executors template_children final_at
-- Retention (and a template's history): delete jobs final since the cutoff or before, each
-- with every index entry: the document, its summary and scalar hash, the list, state and
-- ownership and search indexes, the due/lease/expiry/deadline sets, its trace, the executor records of its
-- attempts (by retention) and its place among its template's children. The document is only read here (its
-- state, ownership fields, attempts), never written. An index entry whose job is not in a
-- terminal state (never expected) is only dropped.
-- ARGV: cutoff (ms), shape JSON {filters = [ownership field names], terminal = [states],
--       executors = whether to forget the attempts' executor records (a template's history is
--       trimmed as soon as a child ends: the reaper may still need its record then)}, then the
--       job ids.
-- Returns the ids deleted.
local cutoff, shape_json = tonumber(ARGV[1]), ARGV[2]
local IDS_FROM = 3

local shape = cjson.decode(shape_json)
local terminal = {}
for _, state in ipairs(shape.terminal) do terminal[state] = true end
local final_key = K.final_at('jobs')

local function unindex(id, doc)
  redis.call('ZREM', K.jobs_by_state(doc.state), id)
  for _, name in ipairs(shape.filters) do
    local value = doc[name]
    if type(value) == 'string' and value ~= '' then
      redis.call('ZREM', K.jobs_by(name, value), id)
    end
  end
  local runner = doc.runner
  if shape.executors and type(runner) == 'table' and type(runner.attempts) == 'table' then
    for _, a in ipairs(runner.attempts) do
      if type(a.machine) == 'string' and type(a.attempt_id) == 'string' then
        redis.call('HDEL', K.executors(a.machine), a.attempt_id)
      end
    end
  end
  if doc.source_kind == 'calendar' and type(doc.source_id) == 'string' then
    redis.call('ZREM', K.template_children(doc.source_id), id)
  end
  -- The search indexes it is in (state/job_search.py): a field `term:<name>:<value>` each in
  -- its scalar hash.
  for _, f in ipairs(redis.call('HKEYS', K.job(id))) do
    local name, value = string.match(f, '^term:([^:]+):(.*)$')
    if name then redis.call('ZREM', K.jobs_by(name, value), id) end
  end
end

local purged = {}
for _, id in ipairs({unpack(ARGV, IDS_FROM)}) do
  local at = redis.call('ZSCORE', final_key, id)
  if at and tonumber(at) <= cutoff then
    local raw = redis.call('HGET', K.job_docs, id)
    local doc = raw and cjson.decode(raw)
    if not doc or terminal[doc.state] then
      if doc then unindex(id, doc) end
      redis.call('HDEL', K.job_docs, id)
      redis.call('HDEL', K.job_summaries, id)
      redis.call('DEL', K.job(id), K.trace(id))
      for _, index in ipairs({K.jobs_all, K.jobs_due, K.jobs_leases, K.jobs_expiry,
          K.jobs_deadlines}) do
        redis.call('ZREM', index, id)
      end
      purged[#purged + 1] = id
    end
    redis.call('ZREM', final_key, id)
  end
end
return purged
