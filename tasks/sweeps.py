"""Periodic sweeps beat sends (see beat_schedule.py). Each is idempotent: running one twice, or
two at once, changes nothing twice, because every move is one Lua script that re-checks its
precondition."""

from __future__ import annotations

import logging

from dispatchyard.settings import get_settings
from dispatchyard.state import clock, heartbeats, job_queries, jobs, mutations
from dispatchyard.state import executors as executor_records
from dispatchyard.state.errors import StateError
from dispatchyard.state.job_rules import current_attempt
from dispatchyard.state.models import JobState
from tasks import jobs as reap_jobs
from tasks import names
from tasks.connection import redis_client
from workers.app import app, task

log = logging.getLogger(__name__)


@task(names.SWEEP_OFFLINE_HOSTS)
def offline_hosts() -> dict[str, list[str]]:
    """Hosts with no heartbeat for `worker_offline_after_s` become offline; their
    claimed-but-not-running sessions go back to the queue with their original priority."""
    s = get_settings()
    marked = heartbeats.sweep_offline(
        redis_client(), clock.now_ms(), int(s.worker_offline_after_s * 1000)
    )
    for host_id, moved in marked.items():
        log.info("host %s offline; requeued %d session(s)", host_id, len(moved))
    return marked


@task(names.SWEEP_STALE_MUTATIONS)
def stale_mutations() -> int:
    """Delivered mutations whose host stays silent become failed/undelivered once the
    redelivery windows of all their `mutation_max_deliveries` have passed, even if the host
    never heartbeats again."""
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


@task(names.SWEEP_JOB_LEASES)
def job_leases() -> list[str]:
    """Attempts whose lease ran out (their worker died mid-fire) end `unavailable` /
    `runner_interrupted` (or `cancelled` if a cancel was pending); the leftover process group
    is reaped by a task on that attempt's own machine queue, sent again once a lease while the
    attempt's executor record stays (the worker that took the reap may have died with it)."""
    r = redis_client()
    now = clock.now_ms()
    ended = []
    for job_id in job_queries.expired_leases(r, now):
        attempt_id = jobs.flags(r, job_id).get("attempt")
        if not attempt_id:
            continue
        doc = jobs.lease_lost(r, job_id, attempt_id, now)
        if doc is None:
            continue  # renewed or ended meanwhile
        ended.append(job_id)
        attempt = current_attempt(doc)
        machine = (attempt.get("machine") if attempt else None) or ""
        # A worker killed between its spawn and its record left none: write it, so the reap
        # below is sent again until done (reap_jobs.resend_reaps) even if its holder dies.
        executor_records.remember_missing(r, machine, attempt_id, job_id, now)
        app.send_task(names.REAP, (attempt_id,), queue=names.fires_queue(machine))
        log.warning("job %s: attempt %s lost its runner", job_id, attempt_id)
    reap_jobs.resend_reaps(r, now)
    return ended


@task(names.SWEEP_JOB_TIMES)
def job_times() -> dict[str, int]:
    """`expires_at` passed while still queued -> expired; `deadline_at` passed while active
    and not under a supervisor that enforces it (delivered, awaiting input, ...) -> failed
    with deadline_exceeded. A supervised executor sees the job end and stops."""
    r = redis_client()
    now = clock.now_ms()
    counts = {"expired": 0, "deadline_exceeded": 0}
    for job_id in job_queries.past_expiry(r, now):
        try:
            jobs.end_without_attempt(
                r, job_id, state=JobState.EXPIRED, reason="expires_at_passed", now_ms=now
            )
            counts["expired"] += 1
        except StateError:
            continue
    for job_id in job_queries.past_deadline(r, now):
        if jobs.deadline_exceeded(r, job_id, now):
            counts["deadline_exceeded"] += 1
    return counts
