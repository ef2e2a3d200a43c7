"""The scheduler tick beat sends every `template_tick_s` (half a second): fire due jobs,
materialize due recurring templates, release buffered children. Single-flight by a short
lock, and safe to run twice: every step is an idempotent transaction keyed by job id,
template and due time."""

from __future__ import annotations

import json
import logging

from state import clock, jobs, machines, templates
from tasks.jobs import send_fire, target_machine
from tasks.store import redis_client
from workers.app import app

log = logging.getLogger(__name__)

LOCK = "scheduler:tick:lock"
RESEND_AFTER_MS = 30_000  # a fire not acquired by then is sent again (same key: no duplicate)
RECHECK_MS = 5_000  # a job waiting for its machine's worker is looked at again after this


BATCH = 25  # due templates one task materializes; more are fanned out to other workers


@app.task(name="scheduler.tick")
def tick() -> dict[str, int]:
    r = redis_client()
    # Single flight: a tick slower than the beat interval must not pile up behind itself.
    if not r.set(LOCK, "1", nx=True, px=10_000):
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
        counts["fired"] = dispatch_due(r, clock.now_ms())
        return counts
    finally:
        r.delete(LOCK)


@app.task(name="scheduler.materialize")
def materialize(due: list[tuple[str, int]]) -> dict[str, int]:
    """Materialize these (template, due time) pairs and fire their children at once.
    Idempotent: a pair already handled is `stale` and changes nothing."""
    r = redis_client()
    counts = {"materialized": 0, "skipped": 0, "released": 0}
    for template_id, due_ms in due:
        outcome, child = templates.materialize(r, template_id, int(due_ms), clock.now_ms())
        if outcome == "created" and child is not None:
            counts["materialized"] += 1
            dispatch_now(r, child, clock.now_ms())
        elif outcome == "skipped":
            counts["skipped"] += 1
    return counts


def dispatch_due(r, now_ms: int) -> int:
    """Send the fire of every queued job that is due, unless its machine has no live worker."""
    sent = 0
    due = jobs.due(r, now_ms)
    for job_id, raw in zip(
        due, jobs.raw_many(r, due, summary=True, keep_missing=True), strict=True
    ):
        doc = json.loads(raw) if raw else None
        if doc is None or doc["state"] != "queued":
            continue
        machine = target_machine(doc)
        if machine and not machines.alive(r, machine, now_ms):
            jobs.note_waiting(r, job_id, "no_worker_for_machine", now_ms)
            jobs.postpone(r, job_id, now_ms + RECHECK_MS)
            continue
        jobs.postpone(r, job_id, now_ms + RESEND_AFTER_MS)
        send_fire(job_id, machine, f"due:{job_id}")
        sent += 1
    return sent


def dispatch_now(r, doc: dict, now_ms: int) -> bool:
    """Fire a job that is due now right away (the shim calls this after creating it)."""
    machine = target_machine(doc)
    if machine and not machines.alive(r, machine, now_ms):
        jobs.note_waiting(r, doc["job_id"], "no_worker_for_machine", now_ms)
        return False
    jobs.postpone(r, doc["job_id"], now_ms + RESEND_AFTER_MS)
    send_fire(doc["job_id"], machine, f"due:{doc['job_id']}")
    return True
