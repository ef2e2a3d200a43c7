"""The scheduler tick beat sends every `template_tick_s` (half a second): fire due jobs,
materialize due recurring templates, release buffered children, fire due scheduled messages
(tasks/schedules.py). Single-flight by a short lock, and safe to run twice: every step is an
idempotent transaction keyed by job id, template or schedule, and due time."""

from __future__ import annotations

import json
import logging

from dispatchyard.state import clock, dispatch, job_queries, keys, locks, templates
from dispatchyard.state.job_shape import JobDoc, JobSummary, target_machine
from dispatchyard.state.models import JobState
from dispatchyard.state.store import Redis
from tasks import names, schedules
from tasks.connection import redis_client
from tasks.jobs import send_fire
from workers.app import task

log = logging.getLogger(__name__)

LOCK_MS = 10_000
BATCH = 25  # due templates one task materializes; more are fanned out to other workers


@task(names.SCHEDULER_TICK)
def tick() -> dict[str, int]:
    r = redis_client()
    # Single flight: a tick slower than the beat interval must not pile up behind itself.
    token = locks.acquire(r, keys.SCHEDULER_LOCK, LOCK_MS)
    if token is None:
        return {}
    try:
        due = templates.due(r, clock.now_ms())
        # A burst of due templates is shared out: each batch is idempotent per (template, due).
        for start in range(BATCH, len(due), BATCH):
            materialize.delay(due[start : start + BATCH])
        counts = materialize(due[:BATCH])
        for template_id in templates.buffered_templates(r):
            if templates.release_buffered(r, template_id, clock.now_ms()):
                counts["released"] += 1
        counts["fired"] = fire_due(r, clock.now_ms())
        counts["schedules_fired"] = schedules.fire_due(r, clock.now_ms())
        return counts
    finally:
        locks.release(r, keys.SCHEDULER_LOCK, token)


@task(names.MATERIALIZE)
def materialize(due: list[tuple[str, int]]) -> dict[str, int]:
    """Materialize these (template, due time) pairs and fire their children at once.
    Idempotent: a pair already handled is `stale` and changes nothing."""
    r = redis_client()
    counts = {"materialized": 0, "skipped": 0, "released": 0}
    for template_id, due_ms in due:
        outcome, child = templates.materialize(r, template_id, int(due_ms), clock.now_ms())
        if outcome == "created" and child is not None:
            counts["materialized"] += 1
            fire_now(r, child, clock.now_ms())
        elif outcome == "skipped":
            counts["skipped"] += 1
    return counts


def fire_now(r: Redis, doc: JobDoc | JobSummary, now_ms: int) -> bool:
    """Send a due job's fire, unless its machine has no live worker node."""
    if not dispatch.ready(r, doc, now_ms):
        return False
    send_fire(doc["job_id"], target_machine(doc), dispatch.fire_key(doc["job_id"]))
    return True


def fire_due(r: Redis, now_ms: int) -> int:
    """Send the fire of every queued job that is due (or whose fire was not taken in time)."""
    sent = 0
    due = job_queries.due(r, now_ms)
    for raw in job_queries.summaries(r, due):
        doc: JobSummary | None = json.loads(raw) if raw else None
        if doc is not None and doc["state"] == JobState.QUEUED and fire_now(r, doc, now_ms):
            sent += 1
    return sent
