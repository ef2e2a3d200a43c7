"""The rules of recurring job templates (`cal-*`, the /jobs API in docs/api.md), as pure functions:
a new template, its next due time, pause/resume/cancel, what one due time makes (a child, a buffered
child, or a skip), and the child's document. No Redis: `state/templates.py` applies them."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict

from dispatchyard.state import cron, job_shape
from dispatchyard.state.clock import iso, parse_ms
from dispatchyard.state.errors import Conflict
from dispatchyard.state.job_shape import Execution, JobDoc, JobRequest, RuntimeBinding
from dispatchyard.state.models import TEMPLATE_TRANSITIONS, TemplateState

DEFAULT_OVERLAP = "skip"
SKIPPED_KEPT = 20
BINDINGS_KEPT = 10


class TemplateProvenance(TypedDict, total=False):
    """A template's `provenance`: the client's own keys (kept as given) and what its due times
    and its children's runs add."""

    cancel_reason: str
    buffered_behind: str | None  # the child a buffered child waits for
    last_materialized_reason: str
    skipped_due_times: list[str]
    runtime_binding: RuntimeBinding
    runtime_binding_history: list[RuntimeBinding]


class TemplateDoc(TypedDict):
    """A recurring template's status object, as stored and as GET /jobs/cal-… answers it."""

    calendar_id: str
    recurring_id: str
    title: str
    kind: str
    state: str  # a TemplateState
    cron: str
    timezone: str
    overlap: str
    next_due_at: str | None  # None only while `new_doc` computes it
    visibility: str
    request: JobRequest
    provenance: TemplateProvenance
    execution: Execution
    last_occurrence_work_id: str | None
    last_materialized_at: str | None
    last_skipped_due_at: str | None
    skipped_count: int
    buffered_work_id: str | None
    created_at: str
    updated_at: str
    # Create-request fields copied as given (None when absent).
    owner_peer_id: str | None
    assigned_peer_id: str | None
    circle: str | None
    created_by_peer_id: str | None
    source_kind: str | None
    source_id: str | None
    scope: str | None


# The template's fields each child takes as they are.
ChildField = Literal[
    "title",
    "kind",
    "created_by_peer_id",
    "owner_peer_id",
    "assigned_peer_id",
    "circle",
    "scope",
    "visibility",
]
CHILD_FIELDS: tuple[ChildField, ...] = (
    *("title", "kind", "created_by_peer_id", "owner_peer_id", "assigned_peer_id", "circle"),
    *("scope", "visibility"),
)


def new_id() -> str:
    return f"cal-{secrets.token_hex(6)}"


def next_due_ms(doc: TemplateDoc, after_ms: int) -> int:
    """The first due time of the template's cron strictly after `after_ms`."""
    after = datetime.fromtimestamp(after_ms / 1000, tz=UTC)
    zone = cron.zone(doc.get("timezone"))
    return int(cron.next_after(cron.parse(doc["cron"]), after, zone).timestamp() * 1000)


def new_doc(fields: Mapping[str, Any], now_ms: int) -> TemplateDoc:
    """An active template's status object; `fields` carries cron, timezone, overlap and the
    create request's ownership fields."""
    template_id = new_id()
    now = iso(now_ms)
    request: JobRequest = fields.get("request") or JobRequest()
    doc: TemplateDoc = {
        "calendar_id": template_id,
        "recurring_id": template_id,
        "title": fields.get("title", ""),
        "kind": fields.get("kind", "general"),
        "state": TemplateState.ACTIVE,
        "cron": fields["cron"],
        "timezone": fields.get("timezone") or "UTC",
        "overlap": fields.get("overlap") or DEFAULT_OVERLAP,
        "next_due_at": None,
        "visibility": fields.get("visibility", "circle"),
        "request": request,
        "provenance": fields.get("provenance") or TemplateProvenance(),
        "execution": request.get("execution", {}),
        "last_occurrence_work_id": None,
        "last_materialized_at": None,
        "last_skipped_due_at": None,
        "skipped_count": 0,
        "buffered_work_id": None,
        "created_at": now,
        "updated_at": now,
        "owner_peer_id": fields.get("owner_peer_id"),
        "assigned_peer_id": fields.get("assigned_peer_id"),
        "circle": fields.get("circle"),
        "created_by_peer_id": fields.get("created_by_peer_id"),
        "source_kind": fields.get("source_kind"),
        "source_id": fields.get("source_id"),
        "scope": fields.get("scope"),
    }
    doc["next_due_at"] = iso(next_due_ms(doc, now_ms))
    return doc


# How the answer names each move into a state.
MOVED = {
    TemplateState.ACTIVE: "resumed",
    TemplateState.PAUSED: "paused",
    TemplateState.CANCELLED: "cancelled",
}


def change_state(doc: TemplateDoc, now_ms: int, target: TemplateState, reason: str | None) -> bool:
    """Pause, resume or cancel; False when the template is already there (nothing to write).
    Resuming computes the next due time from now (a paused template fires nothing for the
    time it was paused). A move the table forbids raises Conflict."""
    if doc["state"] == target:
        return False
    if target not in TEMPLATE_TRANSITIONS[TemplateState(doc["state"])]:
        message = f"Template cannot be {MOVED[target]} from state {doc['state']}"
        raise Conflict(message, state=doc["state"])
    doc["state"] = target
    if target == TemplateState.ACTIVE:
        doc["next_due_at"] = iso(next_due_ms(doc, now_ms))
    if target == TemplateState.CANCELLED:
        doc["provenance"]["cancel_reason"] = reason or "cancel_requested"
    return True


def occurrence(
    doc: TemplateDoc, now_ms: int, *, due_ms: int, previous_running: bool
) -> tuple[str, JobDoc | None]:
    """What due time `due_ms` makes, given whether the previous child still runs, with the
    template advanced to its next due time: ('created', child), ('buffered', child) or
    ('skipped', None) by the overlap policy; ('stale', None) when the template no longer waits
    for `due_ms` (already handled, paused, cancelled)."""
    if doc["state"] != TemplateState.ACTIVE or parse_ms(doc["next_due_at"]) != due_ms:
        return "stale", None
    policy = doc.get("overlap") or DEFAULT_OVERLAP
    due_iso = iso(due_ms)
    # No backfill: after downtime one overdue child, then the next time after now.
    doc["next_due_at"] = iso(next_due_ms(doc, max(now_ms, due_ms)))
    if previous_running and (policy == "skip" or doc.get("buffered_work_id")):
        record_skip(doc, due_iso)
        return "skipped", None
    child = child_doc(doc, due_iso, now_ms)
    buffered = previous_running and policy == "buffer_one"
    if buffered:
        child["state_reason"] = "buffered_behind_previous"
        child["phase"] = "buffered"
        doc["buffered_work_id"] = child["job_id"]
        doc["provenance"]["buffered_behind"] = doc.get("last_occurrence_work_id")
    doc["last_occurrence_work_id"] = child["job_id"]
    doc["last_materialized_at"] = iso(now_ms)
    doc["provenance"]["last_materialized_reason"] = "due"
    return ("buffered" if buffered else "created"), child


def release(doc: TemplateDoc, buffered_id: str) -> bool:
    """Clear the buffered child `buffered_id` for firing; False when it is no longer the one."""
    if doc.get("buffered_work_id") != buffered_id:
        return False
    doc["buffered_work_id"] = None
    doc["provenance"].pop("buffered_behind", None)
    return True


def record_binding(doc: TemplateDoc, binding: RuntimeBinding) -> None:
    """Remember the runtime session of the latest fire, for the next `resume`."""
    history = [*doc["provenance"].get("runtime_binding_history", []), binding]
    doc["provenance"]["runtime_binding"] = binding
    doc["provenance"]["runtime_binding_history"] = history[-BINDINGS_KEPT:]


def record_skip(doc: TemplateDoc, due_iso: str) -> None:
    skipped = [*doc["provenance"].get("skipped_due_times", []), due_iso][-SKIPPED_KEPT:]
    doc["provenance"]["skipped_due_times"] = skipped
    doc["skipped_count"] = doc.get("skipped_count", 0) + 1
    doc["last_skipped_due_at"] = due_iso


def child_doc(doc: TemplateDoc, due_iso: str, now_ms: int) -> JobDoc:
    """The job one due time of the template makes."""
    request = copy.deepcopy(doc["request"])
    execution = request.setdefault("execution", {})
    execution["schedule"] = {
        **execution.get("schedule", {}),
        "due_at": due_iso,
        "calendar_id": doc["calendar_id"],
        "cron": doc["cron"],
    }
    fields: dict[str, object] = {name: doc.get(name) for name in CHILD_FIELDS}
    fields.update(
        source_kind="calendar",
        source_id=doc["calendar_id"],
        request=request,
        provenance={
            "calendar": {
                "calendar_id": doc["calendar_id"],
                "cron": doc["cron"],
                "timezone": doc.get("timezone") or "UTC",
                "scheduled_due_at": due_iso,
            }
        },
    )
    return job_shape.new_doc(fields, now_ms)
