"""The rules of recurring job templates (`cal-*`, the /jobs API in docs/api.md), as pure functions:
a new template, its next due time, pause/resume/cancel, what one due time makes (a child, a buffered
child, or a skip), and the child's document. No Redis: `state/templates.py` applies them."""

from __future__ import annotations

import copy
import secrets
from datetime import UTC, datetime
from typing import Any

from dispatchyard.state import cron, job_shape
from dispatchyard.state.clock import iso, parse_ms
from dispatchyard.state.errors import Conflict
from dispatchyard.state.job_shape import Doc
from dispatchyard.state.models import TEMPLATE_TRANSITIONS, TemplateState

DEFAULT_OVERLAP = "skip"
SKIPPED_KEPT = 20
BINDINGS_KEPT = 10
# Create-request fields copied onto the template, and from it onto each child.
TEMPLATE_FIELDS = (
    *("owner_peer_id", "assigned_peer_id", "circle", "created_by_peer_id", "source_kind"),
    *("source_id", "scope"),
)
CHILD_FIELDS = (
    *("title", "kind", "created_by_peer_id", "owner_peer_id", "assigned_peer_id", "circle"),
    *("scope", "visibility"),
)


def new_id() -> str:
    return f"cal-{secrets.token_hex(6)}"


def next_due_ms(doc: Doc, after_ms: int) -> int:
    """The first due time of the template's cron strictly after `after_ms`."""
    after = datetime.fromtimestamp(after_ms / 1000, tz=UTC)
    zone = cron.zone(doc.get("timezone"))
    return int(cron.next_after(cron.parse(doc["cron"]), after, zone).timestamp() * 1000)


def new_doc(fields: dict[str, Any], now_ms: int) -> Doc:
    """An active template's status object; `fields` carries cron, timezone, overlap and the
    create request's ownership fields."""
    template_id = new_id()
    now = iso(now_ms)
    request = fields.get("request") or {}
    doc: Doc = {
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
        "provenance": fields.get("provenance") or {},
        "execution": request.get("execution", {}),
        "last_occurrence_work_id": None,
        "last_materialized_at": None,
        "last_skipped_due_at": None,
        "skipped_count": 0,
        "buffered_work_id": None,
        "created_at": now,
        "updated_at": now,
    }
    for name in TEMPLATE_FIELDS:
        doc[name] = fields.get(name)
    doc["next_due_at"] = iso(next_due_ms(doc, now_ms))
    return doc


# How the answer names each move into a state.
MOVED = {
    TemplateState.ACTIVE: "resumed",
    TemplateState.PAUSED: "paused",
    TemplateState.CANCELLED: "cancelled",
}


def change_state(doc: Doc, now_ms: int, target: TemplateState, reason: str | None) -> bool:
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
    doc: Doc, now_ms: int, *, due_ms: int, previous_running: bool
) -> tuple[str, Doc | None]:
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


def release(doc: Doc, buffered_id: str) -> bool:
    """Clear the buffered child `buffered_id` for firing; False when it is no longer the one."""
    if doc.get("buffered_work_id") != buffered_id:
        return False
    doc["buffered_work_id"] = None
    doc["provenance"].pop("buffered_behind", None)
    return True


def record_binding(doc: Doc, binding: dict[str, Any]) -> None:
    """Remember the runtime session of the latest fire, for the next `resume`."""
    history = [*doc["provenance"].get("runtime_binding_history", []), binding]
    doc["provenance"]["runtime_binding"] = binding
    doc["provenance"]["runtime_binding_history"] = history[-BINDINGS_KEPT:]


def record_skip(doc: Doc, due_iso: str) -> None:
    skipped = [*doc["provenance"].get("skipped_due_times", []), due_iso][-SKIPPED_KEPT:]
    doc["provenance"]["skipped_due_times"] = skipped
    doc["skipped_count"] = doc.get("skipped_count", 0) + 1
    doc["last_skipped_due_at"] = due_iso


def child_doc(doc: Doc, due_iso: str, now_ms: int) -> Doc:
    """The job one due time of the template makes."""
    request = copy.deepcopy(doc["request"])
    execution = request.setdefault("execution", {})
    execution["schedule"] = {
        **execution.get("schedule", {}),
        "due_at": due_iso,
        "calendar_id": doc["calendar_id"],
        "cron": doc["cron"],
    }
    fields = {name: doc.get(name) for name in CHILD_FIELDS}
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
