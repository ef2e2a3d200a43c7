"""The wire shape of a durable job (the /jobs API, docs/api.md): a new job's status object and its
summary view. Pure: no Redis."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from dispatchyard.state import clock
from dispatchyard.state.models import JobState

Doc = dict[str, Any]

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
# Create-request fields copied onto the document as given (None when absent).
COPIED_FIELDS = (
    *("owner_peer_id", "assigned_peer_id", "repowire_session_id", "correlation_id", "circle"),
    *("created_by_peer_id", "source_kind", "source_id", "scope", "deadline_at", "expires_at"),
)


def new_job_id() -> str:
    return f"work-{secrets.token_hex(6)}"


def new_attempt_id() -> str:
    return f"attempt-{secrets.token_hex(6)}"


def new_doc(fields: dict[str, Any], now_ms: int, job_id: str | None = None) -> Doc:
    """A queued job's status object, with every field of the wire shape present."""
    job_id = job_id or new_job_id()
    now = clock.iso(now_ms)
    request = fields.get("request") or {}
    execution = request.get("execution") or {}
    doc: Doc = {
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
        "provenance": fields.get("provenance") or {},
        "execution": request.get("execution", {}),
        "runner": {"attempts": [], "attempt_count": 0, "current_attempt_id": None},
        "due_at": (execution.get("schedule") or {}).get("due_at"),
        "links": {},
    }
    for name in COPIED_FIELDS:
        doc[name] = fields.get(name)
    doc["visibility"] = fields.get("visibility", "circle")
    doc["protocol_cancel"] = None
    return doc


def new_attempt(attempt_id: str, why: str, machine: str, now_ms: int, lease_until: str) -> Doc:
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


def summarize(doc: Doc) -> Doc:
    """The summary view: ids, state, ownership/routing, times, results, trimmed execution.
    Templates are summarized the same way."""
    out = {k: doc[k] for k in SUMMARY_KEYS if k in doc}
    execution = doc.get("execution")
    if isinstance(execution, dict):
        out["execution"] = {k: execution[k] for k in SUMMARY_EXECUTION_KEYS if k in execution}
    return out


def created_score(doc: Doc) -> float:
    """Microseconds since the epoch: unique enough to order and page the list."""
    return datetime.fromisoformat(doc["created_at"]).timestamp() * 1_000_000


def target_machine(doc: Doc) -> str | None:
    """The host a job's fire must run on, if it names one."""
    target = (doc.get("execution") or {}).get("target") or {}
    machine = target.get("machine")
    return str(machine) if machine else None
