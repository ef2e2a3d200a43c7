--! include lib_common
--! keys template_docs template_summaries template templates_all templates_by_state
--! keys templates_due templates_buffered template_children templates_history final_at
-- Retention: delete templates cancelled since the cutoff or before, each with every index
-- entry: the document, its summary and scalar hash, the list, state, due and buffered sets,
-- its children index and history mark (its children are jobs, with their own retention). A
-- template still holding a buffered child waits for it (its retention starts again from now).
-- An entry whose template is not cancelled (never expected) is only dropped.
-- ARGV: cutoff (ms), now (ms), the final state, the states JSON, then the template ids.
-- Returns the ids deleted.
local cutoff, now, final_state, states_json = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local IDS_FROM = 5

local states = cjson.decode(states_json)
local final_key = K.final_at('templates')
local purged = {}
for _, id in ipairs({unpack(ARGV, IDS_FROM)}) do
  local at = redis.call('ZSCORE', final_key, id)
  if at and tonumber(at) <= cutoff then
    local raw = redis.call('HGET', K.template_docs, id)
    local doc = raw and cjson.decode(raw)
    if doc and doc.state == final_state and type(doc.buffered_work_id) == 'string' then
      redis.call('ZADD', final_key, now, id)
    else
      if not doc or doc.state == final_state then
        redis.call('HDEL', K.template_docs, id)
        redis.call('HDEL', K.template_summaries, id)
        redis.call('DEL', K.template(id), K.template_children(id))
        redis.call('ZREM', K.templates_all, id)
        redis.call('ZREM', K.templates_due, id)
        redis.call('ZREM', K.templates_history, id)
        redis.call('SREM', K.templates_buffered, id)
        for _, state in ipairs(states) do redis.call('SREM', K.templates_by_state(state), id) end
        purged[#purged + 1] = id
      end
      redis.call('ZREM', final_key, id)
    end
  end
end
return purged
