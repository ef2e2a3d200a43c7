"""Scheduled message fires (the /schedules API, docs/api.md): the scheduler tick hands every due
(schedule, due time) pair to `fire`, which claims the due time and then delivers the notify or ask
through the mesh and records how it went.

Idempotent by (schedule id, due time): the claim is a transaction that proceeds only while the
schedule still waits for exactly that due time, so two beats, a redelivered task or a racing
tick deliver it once. The claim comes before the delivery: a worker that dies between the two
leaves that due time undelivered (its outcome stays `firing`) rather than delivered twice.
"""

from __future__ import annotations

import logging
from typing import Any

from dispatchyard.settings import get_settings
from dispatchyard.state import clock, messaging, schedule_rules, schedules, traces
from dispatchyard.state.schedule_rules import DeliveryError, Outcome, ScheduleDoc
from dispatchyard.state.store import Redis
from tasks import names
from tasks.connection import redis_client
from tasks.retention import retention_s
from workers.app import task

log = logging.getLogger(__name__)

BATCH = 25  # due schedules one task fires; more are fanned out to other workers


def fire_due(r: Redis, now_ms: int) -> int:
    """The scheduler tick's step: fire the first batch of due schedules here and send the rest
    out in batches. A pair sent twice (the next tick comes before a batch ran) is stale the
    second time. How many fired here."""
    due = schedules.due(r, now_ms)
    for start in range(BATCH, len(due), BATCH):
        fire.delay(due[start : start + BATCH])
    fired: int = fire(due[:BATCH])["fired"]
    return fired


@task(names.FIRE_SCHEDULES)
def fire(due: list[tuple[str, int]]) -> dict[str, int]:
    """Fire these (schedule, due time) pairs: {fired, failed, stale}."""
    r = redis_client()
    counts = {"fired": 0, "failed": 0, "stale": 0}
    for schedule_id, due_ms in due:
        try:
            result = fire_one(r, schedule_id, int(due_ms))
        except Exception:
            # One schedule's fault (its record, its peer) must not hold back the rest.
            log.exception("schedule %s: fire of due time %s failed", schedule_id, due_ms)
            counts["failed"] += 1
            continue
        if result is None:
            counts["stale"] += 1
        else:
            counts["failed" if result["status"] == "failed" else "fired"] += 1
    return counts


def fire_one(r: Redis, schedule_id: str, due_ms: int) -> Outcome | None:
    """Claim and deliver one due time; its outcome, or None when the due time was not this
    call's to fire (already fired, deleted, not yet due)."""
    kept_ms = int(retention_s(get_settings(), "schedules") * 1000)
    claimed = schedules.claim(r, schedule_id, due_ms, clock.now_ms(), kept_ms)
    if claimed is None:
        return None
    try:
        result = deliver(r, claimed, due_ms)
    except Exception as e:
        # Recorded so the fire does not stay `firing`; the due time is spent either way.
        error: DeliveryError = {"code": 500, "detail": f"{type(e).__name__}: delivery failed"}
        schedules.record_outcome(
            r, claimed, schedule_rules.outcome(due_ms, status="failed", error=error), clock.now_ms()
        )
        raise
    schedules.record_outcome(r, claimed, result, clock.now_ms())
    log.info(
        "schedule %s fired (%s -> %s, %s): %s",
        schedule_id,
        claimed["from_peer"],
        claimed["to_peer"],
        claimed["kind"],
        result["status"],
    )
    return result


def deliver(r: Redis, claimed: ScheduleDoc, due_ms: int) -> Outcome:
    """Send the schedule's notify or ask from `from_peer` to `to_peer` (in its circle), as the
    /notify and /ask routes would; the outcome to record."""
    message: dict[str, Any] = {
        "from_peer": claimed["from_peer"],
        "to_peer": claimed["to_peer"],
        "text": claimed["text"],
        "circle": claimed.get("circle"),
        "now_ms": clock.now_ms(),
    }
    try:
        if claimed["kind"] == "ask":
            ask_id = messaging.ask(r, **message)
            return schedule_rules.outcome(
                due_ms, status=_ask_status(r, ask_id), correlation_id=ask_id
            )
        sent = messaging.notify(r, **message)
    except messaging.Undeliverable as e:
        error = schedule_rules.delivery_error(e)
        log.warning("schedule %s: undeliverable (%s): %s", claimed["schedule_id"], error["code"], e)
        return schedule_rules.outcome(due_ms, status="failed", error=error)
    return schedule_rules.outcome(due_ms, status=sent["status"], delivery_id=sent["delivery_id"])


def _ask_status(r: Redis, ask_id: str) -> str:
    """`queued` when the ask waits in a polling peer's queue (its trace says `pending`), else
    `sent`: messaging.ask answers only the correlation id."""
    stages = {stage["stage"] for stage in traces.read(r, ask_id)}
    return "queued" if "pending" in stages else "sent"
