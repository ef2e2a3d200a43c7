"""Periodic sweeps beat sends (see beat_schedule.py). Each is idempotent: running one twice, or
two at once, changes nothing twice, because every move is one Lua script that re-checks its
precondition."""

from __future__ import annotations

import logging

from settings import get_settings
from state import clock, heartbeats, jobs, keys, mutations
from tasks.store import redis_client
from workers.app import app, fires_queue

log = logging.getLogger(__name__)


@app.task(name="sweeps.offline_workers")
def offline_workers() -> dict[str, list[str]]:
    """Hosts with no heartbeat for `worker_offline_after_s` become offline; their
    claimed-but-not-running sessions go back to the queue with their original priority."""
    s = get_settings()
    marked = heartbeats.sweep_offline(
        redis_client(), clock.now_ms(), int(s.worker_offline_after_s * 1000)
    )
    for worker_id, moved in marked.items():
        log.info("worker %s offline; requeued %d session(s)", worker_id, len(moved))
    return marked


@app.task(name="sweeps.stale_mutations")
def stale_mutations() -> int:
    """Delivered mutations that used up `mutation_max_deliveries` with no report become
    failed/undelivered even if their host never heartbeats again."""
    s = get_settings()
    failed = mutations.sweep_stale(
        redis_client(),
        clock.now_ms(),
        int(s.mutation_redeliver_after_s * 1000),
        s.mutation_max_deliveries,
    )
    if failed:
        log.info("%d mutation(s) failed as undelivered", failed)
    return failed


@app.task(name="sweeps.job_leases")
def job_leases() -> list[str]:
    """Attempts whose lease ran out (their worker died mid-fire) end `unavailable` /
    `runner_interrupted` (or `cancelled` if a cancel was pending); the leftover process group
    is reaped by a task on that attempt's own host queue."""
    from tasks.jobs import reap

    r = redis_client()
    now = clock.now_ms()
    ended = []
    for job_id in jobs.expired_leases(r, now):
        doc = jobs.get(r, job_id)
        attempt = jobs.current_attempt(doc) if doc else None
        lease = jobs.parse_ms((doc or {}).get("runner", {}).get("lease_until"))
        if attempt is None or lease is None or lease > now:
            continue
        cancelled = doc["cancel_requested"]
        try:
            jobs.finish_attempt(
                r, job_id, attempt["attempt_id"],
                state="cancelled" if cancelled else "unavailable",
                reason=(doc.get("cancellation_reason") or "cancel_requested")
                if cancelled else "runner_interrupted",
                error=None if cancelled else {"reason": "runner_interrupted"},
                now_ms=now, from_states=("dispatching", "running"),
            )  # fmt: skip
        except jobs.Refused:
            continue  # renewed or ended meanwhile
        ended.append(job_id)
        reap.apply_async((attempt["attempt_id"],), queue=fires_queue(attempt["machine"]))
        log.warning("job %s: attempt %s lost its runner", job_id, attempt["attempt_id"])
    return ended


@app.task(name="sweeps.job_times")
def job_times() -> dict[str, int]:
    """`expires_at` passed while still queued -> expired; `deadline_at` passed while active
    and not under a supervisor that enforces it (delivered, awaiting input, ...) -> failed
    with deadline_exceeded. A supervised executor sees the job end and stops."""
    r = redis_client()
    now = clock.now_ms()
    counts = {"expired": 0, "deadline_exceeded": 0}
    for job_id in jobs.past(r, keys.JOBS_EXPIRY, now):
        try:
            jobs.end_without_attempt(r, job_id, state="expired", reason="expires_at_passed",
                                     now_ms=now)  # fmt: skip
            counts["expired"] += 1
        except jobs.Refused:
            continue
    for job_id in jobs.past(r, keys.JOBS_DEADLINES, now):
        if jobs.deadline_exceeded(r, job_id, now):
            counts["deadline_exceeded"] += 1
    return counts
