"""Recurring job templates in Redis: stored through the document store like jobs (scalar hash
`template:{id}` that every change writes and transactions WATCH), indexed by next due time and
state, and the rules of `state/template_rules.py` applied atomically.

Materializing a due time is one transaction over the template and its previous child: the
child is created and the template advanced together, and only if the template still waits for
exactly that due time — so each due time yields one child whatever runs it twice.
"""

from __future__ import annotations

import contextlib
import json

from dispatchyard.state import documents, job_search, jobs, keys, store, template_rules
from dispatchyard.state.clock import parse_ms
from dispatchyard.state.documents import IndexMeta, Write
from dispatchyard.state.errors import NotFound
from dispatchyard.state.job_shape import JobDoc, RuntimeBinding, summarize
from dispatchyard.state.models import JOB_TERMINAL, TEMPLATE_TRANSITIONS, Final, TemplateState
from dispatchyard.state.store import Pipeline, Redis
from dispatchyard.state.template_rules import TemplateDoc


def _scalars(doc: TemplateDoc, now_ms: int) -> dict[str, str | int]:
    return {"state": doc["state"], "next_due": parse_ms(doc["next_due_at"]) or 0, "updated": now_ms}


def _index(
    pipe: Pipeline, _before: TemplateDoc | None, doc: TemplateDoc, now_ms: int, _meta: IndexMeta
) -> None:
    template_id = doc["calendar_id"]
    due = parse_ms(doc["next_due_at"]) or 0
    pipe.zadd(keys.TEMPLATES_ALL, {template_id: due})
    for state in TEMPLATE_TRANSITIONS:
        if state == doc["state"]:
            pipe.sadd(keys.templates_by_state(state), template_id)
        else:
            pipe.srem(keys.templates_by_state(state), template_id)
    if doc["state"] == TemplateState.ACTIVE:
        pipe.zadd(keys.TEMPLATES_DUE, {template_id: due})
    else:
        pipe.zrem(keys.TEMPLATES_DUE, template_id)
    if doc.get("buffered_work_id"):
        pipe.sadd(keys.TEMPLATES_BUFFERED, template_id)
    else:
        pipe.srem(keys.TEMPLATES_BUFFERED, template_id)
    if doc["state"] == TemplateState.CANCELLED:  # final: the retention sweep's index
        pipe.zadd(keys.final_at(Final.TEMPLATES), {template_id: now_ms}, nx=True)


def _template_id(doc: TemplateDoc) -> str:
    return doc["calendar_id"]


KIND = documents.Kind[TemplateDoc](
    docs=keys.TEMPLATE_DOCS,
    summaries=keys.TEMPLATE_SUMMARIES,
    record_id=_template_id,
    scalar_key=keys.template,
    scalars=_scalars,
    summarize=summarize,
    index=_index,
    not_found="No recurring job: {}",
)


def write(pipe: Pipeline, doc: TemplateDoc, now_ms: int) -> None:
    """The commands that store a template and its indexes, for a caller's MULTI or pipeline
    (bulk loads use it directly)."""
    documents.put(pipe, KIND, None, doc, now_ms)


def create(r: Redis, doc: TemplateDoc, now_ms: int) -> TemplateDoc:
    pipe = r.pipeline(transaction=True)
    write(pipe, doc, now_ms)
    pipe.execute()
    return doc


def get(r: Redis, template_id: str) -> TemplateDoc | None:
    return documents.get(r, KIND, template_id)


def raw_doc(r: Redis, template_id: str) -> str | None:
    return documents.raw(r, KIND, template_id)


def list_raw(r: Redis, *, state: str | None, filters: dict[str, str], summary: bool) -> list[str]:
    """Templates ordered by next due time, optionally of one state and matching filters."""
    ids = store.zrange(r, keys.TEMPLATES_ALL)
    if state is not None:
        members = store.smembers(r, keys.templates_by_state(state))
        ids = [i for i in ids if i in members]
    if filters:
        kept = []
        summaries = documents.raw_many(r, KIND, ids, summary=True, keep_missing=True)
        for template_id, raw in zip(ids, summaries, strict=True):
            doc = json.loads(raw) if raw else None
            if doc and job_search.matches(doc, filters):
                kept.append(template_id)
        ids = kept
    return [v for v in documents.raw_many(r, KIND, ids, summary=summary) if v]


def set_state(
    r: Redis, template_id: str, target: TemplateState, now_ms: int, reason: str | None = None
) -> TemplateDoc:
    """Pause, resume or cancel (see template_rules.change_state). NotFound; Conflict when
    TEMPLATE_TRANSITIONS forbids the move."""

    def rule(doc: TemplateDoc, _pipe: Pipeline) -> Write | None:
        return Write() if template_rules.change_state(doc, now_ms, target, reason) else None

    doc, _ = documents.mutate(r, KIND, template_id, rule, now_ms)
    return doc


def materialize(r: Redis, template_id: str, due_ms: int, now_ms: int) -> tuple[str, JobDoc | None]:
    """Handle one due time of a template (see template_rules.occurrence). The previous child's
    state is read under WATCH: its end, racing us, aborts and retries this transaction."""

    def rule(doc: TemplateDoc, pipe: Pipeline) -> Write | None:
        previous = doc.get("last_occurrence_work_id")
        running = False
        if previous and doc["state"] == TemplateState.ACTIVE:
            store.watch(pipe, keys.job(previous))
            state = store.hget(pipe, keys.job(previous), "state")
            running = state is not None and state not in JOB_TERMINAL
        outcome, child = template_rules.occurrence(
            doc, now_ms, due_ms=due_ms, previous_running=running
        )
        if outcome == "stale":
            return None
        if child is None:
            return Write(result=(outcome, None))
        due = None if outcome == "buffered" else now_ms

        def extra(p: Pipeline) -> None:
            jobs.write_new(p, child, now_ms, due_ms=due)

        return Write(extra=extra, result=(outcome, child))

    try:
        _, write = documents.mutate(r, KIND, template_id, rule, now_ms)
    except NotFound:
        return "stale", None
    if write is None:
        return "stale", None
    result: tuple[str, JobDoc | None] = write.result
    return result


def release_buffered(r: Redis, template_id: str, now_ms: int) -> str | None:
    """Once the child before it has ended, send the buffered child to be fired; its id, or
    None when there is none or the one before still runs."""
    doc = get(r, template_id)
    buffered = doc.get("buffered_work_id") if doc else None
    if not doc or not buffered:
        return None
    behind = doc.get("provenance", {}).get("buffered_behind")

    def rule(d: TemplateDoc, pipe: Pipeline) -> Write | None:
        # A child that ended may have been purged since (template history, retention).
        state = store.hget(pipe, keys.job(behind), "state") if behind else None
        if state is not None and state not in JOB_TERMINAL:
            return None
        if not template_rules.release(d, buffered):
            return None

        def extra(p: Pipeline) -> None:
            p.zadd(keys.JOBS_DUE, {buffered: now_ms})

        return Write(extra=extra, result=buffered)

    watch = [keys.job(behind)] if behind else []
    try:
        _, write = documents.mutate(r, KIND, template_id, rule, now_ms, *watch)
    except NotFound:  # removed meanwhile
        return None
    if write is None:
        return None
    released: str = write.result
    return released


def buffered_templates(r: Redis) -> list[str]:
    return list(store.smembers(r, keys.TEMPLATES_BUFFERED))


def due(r: Redis, now_ms: int, batch: int = 5000) -> list[tuple[str, int]]:
    rows = store.zrangebyscore_scored(r, keys.TEMPLATES_DUE, "-inf", now_ms, batch)
    return [(template_id, int(score)) for template_id, score in rows]


def record_binding(r: Redis, template_id: str, binding: RuntimeBinding, now_ms: int) -> None:
    """Remember the runtime session of the latest fire, for the next `resume`."""

    def rule(doc: TemplateDoc, _pipe: Pipeline) -> Write:
        template_rules.record_binding(doc, binding)
        return Write()

    with contextlib.suppress(NotFound):  # a template removed meanwhile needs no binding
        documents.mutate(r, KIND, template_id, rule, now_ms)
