"""What the /jobs routes answer (repowire 0.17's shapes, as `views.py` builds them): a job's
status object, a recurring template's, their summaries, results and the list; and a trace."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import RootModel

from api_shim.answers import Answer, Json, OpenAnswer, absent
from dispatchyard.state.models import JobState, TemplateState


class Runner(Answer):
    """Who runs the job: its attempts (one per fire), the current one, its lease."""

    attempts: list[Json]
    attempt_count: int
    current_attempt_id: str | None
    lease_until: str | None = absent("set by the first fire")
    fire_keys: list[str] = absent("the fire keys used, set by the first fire")


class _Ownership(Answer):
    owner_peer_id: str | None
    assigned_peer_id: str | None
    circle: str | None
    created_by_peer_id: str | None
    source_kind: str | None
    source_id: str | None
    scope: str | None


class JobStatus(_Ownership):
    """A durable job (`work-…`): every field is always there."""

    job_id: str
    work_id: str
    title: str
    kind: str
    state: JobState
    state_reason: str | None
    phase: str | None
    progress: Json
    progress_events: list[Json]
    created_at: str
    updated_at: str
    result_summary: str | None
    result_data: Json
    error: Json
    artifacts: list[Any]
    cancel_requested: bool
    cancel_requested_at: str | None
    cancel_requested_by_peer_id: str | None
    cancellation_reason: str | None
    completed_at: str | None
    request: Json
    provenance: Json
    execution: Json
    runner: Runner
    due_at: str | None
    links: Json
    repowire_session_id: str | None
    correlation_id: str | None
    deadline_at: str | None
    expires_at: str | None
    visibility: str
    protocol_cancel: Json | None


class TemplateStatus(_Ownership):
    """A recurring job template (`cal-…`): every field is always there."""

    calendar_id: str
    recurring_id: str
    title: str
    kind: str
    state: TemplateState
    cron: str
    timezone: str
    overlap: str
    next_due_at: str | None
    visibility: str
    request: Json
    provenance: Json
    execution: Json
    last_occurrence_work_id: str | None
    last_materialized_at: str | None
    last_skipped_due_at: str | None
    skipped_count: int
    buffered_work_id: str | None
    created_at: str
    updated_at: str


def _field(what: str) -> Any:
    return absent(f"present when the {what} has it")


class Summary(Answer):
    """`view=summary`: the fields of a job or template among these (ids, state, ownership,
    times, result summary) and the routing part of its execution."""

    job_id: str = _field("job")
    work_id: str = _field("job")
    calendar_id: str = _field("template")
    recurring_id: str = _field("template")
    title: str = _field("document")
    kind: str = _field("document")
    state: JobState | TemplateState = _field("document")
    state_reason: str | None = _field("job")
    phase: str | None = _field("job")
    owner_peer_id: str | None = _field("document")
    assigned_peer_id: str | None = _field("document")
    repowire_session_id: str | None = _field("job")
    correlation_id: str | None = _field("job")
    circle: str | None = _field("document")
    created_by_peer_id: str | None = _field("document")
    source_kind: str | None = _field("document")
    source_id: str | None = _field("document")
    scope: str | None = _field("document")
    visibility: str = _field("document")
    created_at: str = _field("document")
    updated_at: str = _field("document")
    deadline_at: str | None = _field("job")
    expires_at: str | None = _field("job")
    due_at: str | None = _field("job")
    cron: str = _field("template")
    timezone: str = _field("template")
    overlap: str = _field("template")
    next_due_at: str | None = _field("template")
    last_occurrence_work_id: str | None = _field("template")
    last_materialized_at: str | None = _field("template")
    result_summary: str | None = _field("job")
    cancel_requested: bool = _field("job")
    cancel_requested_at: str | None = _field("job")
    cancel_requested_by_peer_id: str | None = _field("job")
    cancellation_reason: str | None = _field("job")
    execution: Json = _field("document")


class JobList(Answer):
    work: list[JobStatus | Summary]
    recurring: list[TemplateStatus | Summary]
    next_cursor: str | None = absent("present when `limit` was given; null on the last page")


class JobCreated(Answer):
    job_id: str
    work_id: str
    status: JobStatus


class TemplateCreated(Answer):
    calendar_id: str
    recurring_id: str
    calendar: TemplateStatus


class Created(RootModel[JobCreated | TemplateCreated]):
    """A job, or a recurring template when the request named a `cron`."""


class JobAnswer(Answer):
    status: JobStatus


class TemplateAnswer(Answer):
    status: TemplateStatus


class DocumentAnswer(Answer):
    status: JobStatus | TemplateStatus


class Outcome(Answer):
    job_id: str
    work_id: str
    state: JobState
    summary: str | None
    data: Json
    error: Json
    artifacts: list[Any]
    completed_at: str | None
    provenance: Json


class NotReady(Answer):
    job_id: str
    work_id: str
    result_state: Literal["not_ready"]
    status: JobStatus


class TemplateResult(Answer):
    result_state: Literal["recurring_template"]
    calendar: TemplateStatus


class Result(Answer):
    result: Outcome | NotReady | TemplateResult


class TraceStage(OpenAnswer):
    """One stage; a job's stages also carry the job's `state`."""

    seq: int
    stage: str
    status: str
    peer_id: str | None
    from_peer_id: str | None
    ts: str
    detail: Json


class Trace(Answer):
    trace_id: str
    kind: Literal["job", "schedule", "ask", "notify"]
    stages: list[TraceStage]
