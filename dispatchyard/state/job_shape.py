"""The wire shape of a durable job (the /jobs API, docs/api.md): the job document (its status
object) as TypedDicts, a new job's document and its summary view. Pure: no Redis.

The nested shapes templates share (`request`, `execution`, a runtime binding) are defined here
too; a template's own document is `template_rules.TemplateDoc`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NotRequired, TypedDict

from dispatchyard.state import clock
from dispatchyard.state.models import JobState


class Prompt(TypedDict, total=False):
    """`execution.prompt`: what the agent is told."""

    body: str
    source: str  # inline, file or title
    source_path: str | None


class Target(TypedDict, total=False):
    """`execution.target`: where and with what a fire runs, or the peer it goes to."""

    path: str
    backend: str
    profile: str
    machine: str
    assigned_peer_id: str


class ExecutionSchedule(TypedDict, total=False):
    """`execution.schedule`: a one-shot's due time, or the template and cron a child came from."""

    due_at: str
    calendar_id: str
    cron: str


class Execution(TypedDict, total=False):
    """`request.execution` (and the document's own `execution`): the create request's
    execution inputs, with the top-level ones merged in."""

    prompt: Prompt
    target: Target
    schedule: ExecutionSchedule
    delivery: dict[str, Any]  # {"kind": "ask", ...}: kept as the client sent it
    process_scope: str  # per_fire or persistent
    continuity: str  # resume or fresh


class JobRequest(TypedDict, total=False):
    """The stored create `request`: the client's own object (its other keys kept as given)
    with `execution` merged."""

    execution: Execution


class ErrorInfo(TypedDict, total=False):
    """An `error` object: the runner's are {reason} or {reason, exit_code, message}; a peer's
    PATCH may carry other keys."""

    reason: str
    exit_code: int | None
    message: str


class ExecutorInfo(TypedDict):
    """The process an attempt started (`runner.attempts[].executor`)."""

    pid: int
    pgid: int
    host: str
    argv0: str


class Attempt(TypedDict):
    """One attempt of `runner.attempts`, from its fire to its end."""

    attempt_id: str
    status: str
    phase: str
    fire: str  # why it was fired: due, run, retry
    started_at: str
    ended_at: str | None
    exit_code: int | None
    executor: ExecutorInfo | None
    machine: str
    lease_until: str | None
    error: ErrorInfo
    # A persistent job's attempt, once handed to a peer.
    assigned_peer_id: NotRequired[str]
    correlation_id: NotRequired[str]


class Runner(TypedDict):
    """`runner`: the attempts, the current one and its lease, and the fire keys used."""

    attempts: list[Attempt]
    attempt_count: int
    current_attempt_id: str | None
    # Set by the first fire.
    lease_until: NotRequired[str | None]
    fire_keys: NotRequired[list[str]]


class Continuity(TypedDict, total=False):
    """`provenance.continuity`: whether a fire resumed the previous fire's runtime session."""

    mode: str  # resume or fresh
    resumed: bool
    reason: str
    runtime_session_id: str


class RuntimeBinding(TypedDict):
    """The runtime session a fire's agent ran in, kept on its template for the next resume."""

    backend: str
    path: str
    circle: str
    runtime_session_id: str
    work_id: str
    recorded_at: str


class CalendarOrigin(TypedDict):
    """`provenance.calendar` of a template's child: the due time that made it."""

    calendar_id: str
    cron: str
    timezone: str
    scheduled_due_at: str


class JobProvenance(TypedDict, total=False):
    """A job's `provenance`: the client's own keys (kept as given) and what the runner adds."""

    continuity: Continuity
    runtime_binding: RuntimeBinding
    calendar: CalendarOrigin


class ProgressEvent(TypedDict):
    """One `progress_events` entry: a PATCH's progress note."""

    at: str
    note: str
    state: str
    phase: str | None


class JobDoc(TypedDict):
    """A job's status object, as stored and as GET /jobs/{id} answers it: `new_doc` makes
    every field, the rules of `job_rules` edit them."""

    job_id: str
    work_id: str
    title: str
    kind: str
    state: str  # a JobState
    state_reason: str | None
    phase: str | None
    progress: dict[str, Any]  # as the last PATCH reported it
    progress_events: list[ProgressEvent]
    created_at: str
    updated_at: str
    result_summary: str | None
    result_data: dict[str, Any]  # as the last PATCH reported it
    error: ErrorInfo
    artifacts: list[Any]  # as the last PATCH reported them
    cancel_requested: bool
    cancel_requested_at: str | None
    cancel_requested_by_peer_id: str | None
    cancellation_reason: str | None
    completed_at: str | None
    request: JobRequest
    provenance: JobProvenance
    execution: Execution
    runner: Runner
    due_at: str | None
    links: dict[str, Any]
    owner_peer_id: str | None
    assigned_peer_id: str | None
    repowire_session_id: str | None
    correlation_id: str | None
    circle: str | None
    created_by_peer_id: str | None
    source_kind: str | None  # "calendar" for a template's child
    source_id: str | None
    scope: str | None
    deadline_at: str | None
    expires_at: str | None
    visibility: str
    protocol_cancel: None


class JobSummary(TypedDict):
    """A job's summary view (`summarize`): the fields of SUMMARY_KEYS a job has, and its
    execution trimmed to SUMMARY_EXECUTION_KEYS."""

    job_id: str
    work_id: str
    title: str
    kind: str
    state: str
    state_reason: str | None
    phase: str | None
    owner_peer_id: str | None
    assigned_peer_id: str | None
    repowire_session_id: str | None
    correlation_id: str | None
    circle: str | None
    created_by_peer_id: str | None
    source_kind: str | None
    source_id: str | None
    scope: str | None
    visibility: str
    created_at: str
    updated_at: str
    deadline_at: str | None
    expires_at: str | None
    due_at: str | None
    result_summary: str | None
    cancel_requested: bool
    cancel_requested_at: str | None
    cancel_requested_by_peer_id: str | None
    cancellation_reason: str | None
    execution: NotRequired[Execution]


# The name api_shim/enqueue.py imports (the shim is typed separately); new code says JobDoc.
Doc = JobDoc

SUMMARY_KEYS = (
    *("job_id", "work_id", "calendar_id", "recurring_id", "title", "kind", "state"),
    *("state_reason", "phase", "owner_peer_id", "assigned_peer_id", "repowire_session_id"),
    *("correlation_id", "circle", "created_by_peer_id", "source_kind", "source_id", "scope"),
    *("visibility", "created_at", "updated_at", "deadline_at", "expires_at", "due_at", "cron"),
    *("timezone", "overlap", "next_due_at", "last_occurrence_work_id", "last_materialized_at"),
    *("result_summary", "cancel_requested", "cancel_requested_at"),
    *("cancel_requested_by_peer_id", "cancellation_reason"),
)
SUMMARY_EXECUTION_KEYS = ("target", "delivery", "process_scope", "continuity")


def new_job_id() -> str:
    return f"work-{secrets.token_hex(6)}"


def new_attempt_id() -> str:
    return f"attempt-{secrets.token_hex(6)}"


def new_doc(fields: Mapping[str, Any], now_ms: int, job_id: str | None = None) -> JobDoc:
    """A queued job's status object, with every field of the wire shape present. `fields` are
    the create request's (as the route validated them) or a template's for its child."""
    job_id = job_id or new_job_id()
    now = clock.iso(now_ms)
    request: JobRequest = fields.get("request") or JobRequest()
    execution = request.get("execution") or {}
    doc: JobDoc = {
        "job_id": job_id,
        "work_id": job_id,
        "title": fields.get("title", ""),
        "kind": fields.get("kind", "general"),
        "state": JobState.QUEUED,
        "state_reason": fields.get("state_reason"),
        "phase": fields.get("phase"),
        "progress": {},
        "progress_events": [],
        "created_at": now,
        "updated_at": now,
        "result_summary": None,
        "result_data": {},
        "error": {},
        "artifacts": [],
        "cancel_requested": False,
        "cancel_requested_at": None,
        "cancel_requested_by_peer_id": None,
        "cancellation_reason": None,
        "completed_at": None,
        "request": request,
        "provenance": fields.get("provenance") or JobProvenance(),
        "execution": request.get("execution", {}),
        "runner": {"attempts": [], "attempt_count": 0, "current_attempt_id": None},
        "due_at": (execution.get("schedule") or {}).get("due_at"),
        "links": {},
        # Create-request fields copied as given (None when absent).
        "owner_peer_id": fields.get("owner_peer_id"),
        "assigned_peer_id": fields.get("assigned_peer_id"),
        "repowire_session_id": fields.get("repowire_session_id"),
        "correlation_id": fields.get("correlation_id"),
        "circle": fields.get("circle"),
        "created_by_peer_id": fields.get("created_by_peer_id"),
        "source_kind": fields.get("source_kind"),
        "source_id": fields.get("source_id"),
        "scope": fields.get("scope"),
        "deadline_at": fields.get("deadline_at"),
        "expires_at": fields.get("expires_at"),
        "visibility": fields.get("visibility", "circle"),
        "protocol_cancel": None,
    }
    return doc


def new_attempt(attempt_id: str, why: str, machine: str, now_ms: int, lease_until: str) -> Attempt:
    """A new attempt of `runner.attempts`, acquired for a fire (`why`: due, run, retry)."""
    return {
        "attempt_id": attempt_id,
        "status": "dispatching",
        "phase": "acquired",
        "fire": why,
        "started_at": clock.iso(now_ms),
        "ended_at": None,
        "exit_code": None,
        "executor": None,
        "machine": machine,
        "lease_until": lease_until,
        "error": {},
    }


def summarize(doc: Mapping[str, object]) -> dict[str, object]:
    """The summary view: ids, state, ownership/routing, times, results, trimmed execution.
    Templates are summarized the same way."""
    out = {k: doc[k] for k in SUMMARY_KEYS if k in doc}
    execution = doc.get("execution")
    if isinstance(execution, dict):
        out["execution"] = {k: execution[k] for k in SUMMARY_EXECUTION_KEYS if k in execution}
    return out


def created_score(doc: JobDoc) -> float:
    """Microseconds since the epoch: unique enough to order and page the list."""
    return datetime.fromisoformat(doc["created_at"]).timestamp() * 1_000_000


def target_machine(doc: JobDoc | JobSummary) -> str | None:
    """The host a job's fire must run on, if it names one (a summary names it too)."""
    target = (doc.get("execution") or {}).get("target") or {}
    machine = target.get("machine")
    return str(machine) if machine else None
