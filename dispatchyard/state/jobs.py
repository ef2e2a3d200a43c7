"""Durable jobs in Redis (the /jobs API, docs/api.md): how a job document is stored and indexed, and
each transition of `state/job_rules.py` applied atomically through the document store.

Besides the document and its summary, a job has a scalar hash `job:{id}` (state, cancel flag,
current attempt) that supervisors poll, and these indexes, all kept in the same MULTI as the
document: by state, by ownership field, due (queued jobs whose fire should be sent), leases
(supervised attempts), expiry and deadlines, and the search indexes (state/job_search.py). A
state change also appends a `job_state_changed` event to the events stream and a stage to the
job's trace; an acquire counts a fire in its minute (state/fire_stats.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Literal

from dispatchyard.state import documents, fire_stats, job_rules, job_search, keys, store, traces
from dispatchyard.state.clock import parse_ms
from dispatchyard.state.documents import IndexMeta, Write
from dispatchyard.state.errors import Conflict, NotFound
from dispatchyard.state.job_shape import (
    ErrorInfo,
    ExecutorInfo,
    JobDoc,
    JobProvenance,
    created_score,
    new_attempt_id,
    summarize,
)
from dispatchyard.state.models import JOB_ACTIVE, JOB_TERMINAL, Final, JobState
from dispatchyard.state.store import Pipeline, Redis

EVENTS_MAXLEN = 100_000
# The ownership fields a job is indexed by (the list's filters).
Filter = Literal["owner_peer_id", "created_by_peer_id", "repowire_session_id", "circle"]
FILTERS: tuple[Filter, ...] = (
    "owner_peer_id",
    "created_by_peer_id",
    "repowire_session_id",
    "circle",
)


def _scalars(doc: JobDoc, now_ms: int) -> dict[str, str | int]:
    return {
        "state": doc["state"],
        "cancel": "1" if doc["cancel_requested"] else "0",
        "attempt": doc["runner"].get("current_attempt_id") or "",
        "updated": now_ms,
    }


def _zset_if(pipe: Pipeline, key: str, job_id: str, score: int | float | None) -> None:
    """Keep `job_id` in the sorted set `key` with `score`, or out of it when None."""
    if score is None:
        pipe.zrem(key, job_id)
    else:
        pipe.zadd(key, {job_id: score})


def _index(
    pipe: Pipeline, before: JobDoc | None, after: JobDoc, now_ms: int, meta: IndexMeta
) -> None:
    """Every index, the event and the trace stage, in step with the document."""
    job_id, state = after["job_id"], after["state"]
    previous = before["state"] if before else None
    if previous != state:
        if previous is not None:
            pipe.zrem(keys.jobs_by_state(previous), job_id)
        pipe.zadd(keys.jobs_by_state(state), {job_id: created_score(after)})
        _final_at(pipe, after, previous, now_ms)
    if state == JobState.QUEUED:
        due_ms = meta.get("due_ms")
        if due_ms is not None:
            pipe.zadd(keys.JOBS_DUE, {job_id: due_ms})
    else:
        pipe.zrem(keys.JOBS_DUE, job_id)
    lease = parse_ms(after["runner"].get("lease_until"))
    _zset_if(pipe, keys.JOBS_LEASES, job_id, lease if state in job_rules.SUPERVISED else None)
    expires = parse_ms(after.get("expires_at"))
    _zset_if(pipe, keys.JOBS_EXPIRY, job_id, expires if state == JobState.QUEUED else None)
    deadline = parse_ms(after.get("deadline_at"))
    _zset_if(pipe, keys.JOBS_DEADLINES, job_id, deadline if state in JOB_ACTIVE else None)
    if previous != state:
        pipe.xadd(
            keys.EVENTS,
            {
                "type": "job_state_changed",
                "job_id": job_id,
                "state": state,
                "previous_state": previous or "",
                "state_reason": after.get("state_reason") or "",
                "at": after["updated_at"],
            },
            maxlen=EVENTS_MAXLEN,
            approximate=True,
        )
    job_search.write(pipe, before, after, job_id, created_score(after))
    if meta.get("stage") == "dispatched":  # an acquire: a fire (job_rules.acquire)
        due = parse_ms(after.get("due_at"))
        fired_because_due = (meta.get("detail") or {}).get("fire") == "due"
        late = now_ms - due if fired_because_due and due is not None else None
        fire_stats.record(pipe, now_ms, late_ms=late)
    stage = meta.get("stage") or (state if previous != state else None)
    if stage:
        entry: dict[str, object] = {
            "stage": stage,
            "status": "ok",
            "ts": after["updated_at"],
            "state": state,
        }
        detail = meta.get("detail")
        if detail:
            entry["detail"] = detail
        traces.append(pipe, job_id, entry)


def _final_at(pipe: Pipeline, doc: JobDoc, previous: str | None, now_ms: int) -> None:
    """The retention index (state/retention.py): a job entering a terminal state is final from
    now; a retry taking it out of one is not final any more. A template's child that ends also
    marks its template's history for trimming."""
    job_id = doc["job_id"]
    if doc["state"] in JOB_TERMINAL:
        pipe.zadd(keys.final_at(Final.JOBS), {job_id: now_ms})
        template_id = doc.get("source_id")
        if doc.get("source_kind") == "calendar" and template_id:
            pipe.zadd(keys.TEMPLATES_HISTORY, {template_id: now_ms})
    elif previous in JOB_TERMINAL:
        pipe.zrem(keys.final_at(Final.JOBS), job_id)


def _job_id(doc: JobDoc) -> str:
    return doc["job_id"]


KIND = documents.Kind[JobDoc](
    docs=keys.JOB_DOCS,
    summaries=keys.JOB_SUMMARIES,
    record_id=_job_id,
    scalar_key=keys.job,
    scalars=_scalars,
    summarize=summarize,
    index=_index,
    not_found="No work: {}",
)


def write_new(pipe: Pipeline, doc: JobDoc, now_ms: int, *, due_ms: int | None) -> None:
    """The commands that store a new queued job, for a caller's MULTI. `due_ms` is when the
    dispatcher should (re)send its fire; None keeps it out of the due index (a buffered child
    waits for its release)."""
    score = created_score(doc)
    pipe.zadd(keys.JOBS_ALL, {doc["job_id"]: score})
    template_id = doc.get("source_id")
    if doc.get("source_kind") == "calendar" and template_id:
        pipe.zadd(keys.template_children(template_id), {doc["job_id"]: score})
    for name in FILTERS:
        value = doc.get(name)
        if value:
            pipe.zadd(keys.jobs_by(name, value), {doc["job_id"]: score})
    documents.put(pipe, KIND, None, doc, now_ms, {"stage": "created", "due_ms": due_ms})


def create(r: Redis, doc: JobDoc, now_ms: int, *, due_ms: int | None = None) -> JobDoc:
    pipe = r.pipeline(transaction=True)
    write_new(pipe, doc, now_ms, due_ms=due_ms)
    pipe.execute()
    return doc


def get(r: Redis, job_id: str) -> JobDoc | None:
    return documents.get(r, KIND, job_id)


def raw_doc(r: Redis, job_id: str) -> str | None:
    """The stored status object, already JSON (routes answer with it as is)."""
    return documents.raw(r, KIND, job_id)


def flags(r: Redis, job_id: str) -> dict[str, str]:
    """The scalars a supervisor polls: state, cancel ('1'/'0'), current attempt."""
    return store.hgetall(r, keys.job(job_id))


def apply(r: Redis, job_id: str, rule: Callable[[JobDoc], Write | None], now_ms: int) -> JobDoc:
    """Apply a rule of job_rules (its inputs bound) to the stored job in one transaction: the
    new document. NotFound for an unknown job; the rule's refusal propagates, and nothing is
    written then."""
    doc, _ = documents.mutate(r, KIND, job_id, lambda doc, _pipe: rule(doc), now_ms)
    return doc


def acquire(
    r: Redis, job_id: str, *, now_ms: int, fire_key: str, why: str, lease_ms: int, machine: str
) -> JobDoc:
    """Start a new attempt (see job_rules.acquire)."""
    attempt_id = new_attempt_id()
    return apply(
        r,
        job_id,
        lambda doc: job_rules.acquire(
            doc,
            now_ms,
            fire_key=fire_key,
            why=why,
            lease_ms=lease_ms,
            machine=machine,
            attempt_id=attempt_id,
        ),
        now_ms,
    )


def executor_started(
    r: Redis,
    job_id: str,
    attempt_id: str,
    *,
    now_ms: int,
    executor: ExecutorInfo,
    provenance: JobProvenance,
    lease_ms: int,
) -> JobDoc:
    return apply(
        r,
        job_id,
        lambda doc: job_rules.executor_started(
            doc,
            now_ms,
            attempt_id=attempt_id,
            executor=executor,
            provenance=provenance,
            lease_ms=lease_ms,
        ),
        now_ms,
    )


def delivered(
    r: Redis,
    job_id: str,
    attempt_id: str,
    *,
    now_ms: int,
    peer_id: str,
    correlation_id: str,
    extra: Callable[[Pipeline], None] | None = None,
) -> JobDoc:
    """`dispatching` -> `delivered` (see job_rules.delivered); `extra` adds commands (the ask
    that carries the job) to the same transaction."""

    def rule(doc: JobDoc, _pipe: Pipeline) -> Write:
        write = job_rules.delivered(
            doc, now_ms, attempt_id=attempt_id, peer_id=peer_id, correlation_id=correlation_id
        )
        write.extra = extra
        return write

    doc, _ = documents.mutate(r, KIND, job_id, rule, now_ms)
    return doc


def renew_lease(r: Redis, job_id: str, attempt_id: str, now_ms: int, lease_ms: int) -> JobDoc:
    return apply(
        r,
        job_id,
        lambda doc: job_rules.renew_lease(doc, now_ms, attempt_id=attempt_id, lease_ms=lease_ms),
        now_ms,
    )


def finish_attempt(
    r: Redis,
    job_id: str,
    attempt_id: str,
    *,
    now_ms: int,
    state: JobState,
    reason: str,
    exit_code: int | None = None,
    result_summary: str | None = None,
    error: ErrorInfo | None = None,
    provenance: JobProvenance | None = None,
    from_states: tuple[str, ...] = job_rules.ENDABLE,
    extra: Callable[[Pipeline], None] | None = None,
) -> JobDoc:
    """End the current attempt and the job (see job_rules.finish_attempt); `extra` adds
    commands to the same transaction."""

    def rule(doc: JobDoc, _pipe: Pipeline) -> Write:
        write = job_rules.finish_attempt(
            doc,
            now_ms,
            attempt_id=attempt_id,
            state=state,
            reason=reason,
            exit_code=exit_code,
            result_summary=result_summary,
            error=error,
            provenance=provenance,
            from_states=from_states,
        )
        write.extra = extra
        return write

    doc, _ = documents.mutate(r, KIND, job_id, rule, now_ms)
    return doc


def end_without_attempt(
    r: Redis, job_id: str, *, state: JobState, reason: str, now_ms: int
) -> JobDoc:
    return apply(
        r,
        job_id,
        lambda doc: job_rules.end_without_attempt(doc, now_ms, state=state, reason=reason),
        now_ms,
    )


def deadline_exceeded(r: Redis, job_id: str, now_ms: int) -> bool:
    """End an active job whose `deadline_at` has passed; False when it is not (or no longer)."""
    try:
        apply(r, job_id, lambda doc: job_rules.deadline_exceeded(doc, now_ms), now_ms)
    except (Conflict, NotFound):
        return False
    return True


def lease_lost(r: Redis, job_id: str, attempt_id: str, now_ms: int) -> JobDoc | None:
    """End an attempt whose lease ran out; None when it was renewed or ended meanwhile."""
    with contextlib.suppress(Conflict, NotFound):
        return apply(
            r,
            job_id,
            lambda doc: job_rules.lease_lost(doc, now_ms, attempt_id=attempt_id),
            now_ms,
        )
    return None


def note_waiting(r: Redis, job_id: str, reason: str, now_ms: int) -> None:
    """Say why a queued job is still waiting (e.g. `no_worker_for_machine`)."""
    apply(r, job_id, lambda doc: job_rules.note_waiting(doc, now_ms, reason=reason), now_ms)


def request_cancel(r: Redis, job_id: str, *, by: str | None, reason: str, now_ms: int) -> JobDoc:
    return apply(
        r,
        job_id,
        lambda doc: job_rules.request_cancel(doc, now_ms, by=by, reason=reason),
        now_ms,
    )


def patch(r: Redis, job_id: str, update: Mapping[str, Any], now_ms: int) -> JobDoc:
    """PATCH /jobs/{id} (see job_rules.report)."""
    return apply(r, job_id, lambda doc: job_rules.report(doc, now_ms, update=update), now_ms)


def postpone(r: Redis, job_id: str, until_ms: int) -> None:
    """Move a queued job's next dispatch check (only if it is still waiting)."""
    r.zadd(keys.JOBS_DUE, {job_id: until_ms}, xx=True)
