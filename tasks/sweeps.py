"""Periodic sweeps beat sends (see beat_schedule.py). Each is idempotent: running one twice, or
two at once, changes nothing twice, because every move is one Lua script that re-checks its
precondition."""

from __future__ import annotations

import logging

from settings import get_settings
from state import clock, heartbeats, mutations
from tasks.store import redis_client
from workers.app import app

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
