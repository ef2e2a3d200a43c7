"""The retention sweep beat sends every `sweep_interval_s` (beat_schedule.py): records final for
longer than their retention are deleted with every index entry (state/retention.py), at most
`retention_batch` of each kind a run, and templates' histories are trimmed to their last
`template_history` fires. Idempotent: each deletion re-checks, in its script, that the record
is still final and was so by the cutoff."""

from __future__ import annotations

import contextlib
import logging

import redis

from dispatchyard.settings import Settings, get_settings
from dispatchyard.state import clock, job_search, retention
from dispatchyard.state.models import Final
from tasks import names
from tasks.connection import redis_client
from workers.app import task

log = logging.getLogger(__name__)
HISTORY = "template_history"


def retention_s(s: Settings, kind: Final | str) -> float:
    """How long a record of `kind` (a `Final`, or "schedules") is kept once final."""
    per_kind = {
        Final.JOBS: s.retention_jobs_s,
        Final.TEMPLATES: s.retention_templates_s,
        Final.SESSIONS: s.retention_sessions_s,
        Final.MUTATIONS: s.retention_mutations_s,
        Final.HOSTS: s.retention_hosts_s,
        "schedules": s.retention_schedules_s,
    }[kind]
    return s.retention_s if per_kind is None else per_kind


@task(names.SWEEP_RETENTION)
def sweep() -> dict[str, int]:
    """How many records of each kind were deleted (and template children trimmed)."""
    s = get_settings()
    r = redis_client()
    now = clock.now_ms()
    deleted: dict[str, int] = {}
    try:
        filed = retention.backfill(r, now)  # once, after the upgrade that brought retention
    except redis.exceptions.OutOfMemoryError:
        filed = 0  # filing writes: tried again next run, the deletions go on meanwhile
    if filed:
        log.info("retention: %d record(s) final before the upgrade filed, kept from now", filed)
    # Jobs older than the list's search indexes, a batch a run until all are filed (a full
    # Redis: tried again next run).
    with contextlib.suppress(redis.exceptions.OutOfMemoryError):
        job_search.backfill(r, s.retention_batch)
    for kind in Final:
        cutoff = now - int(retention_s(s, kind) * 1000)
        try:
            deleted[kind] = retention.sweep(r, kind, cutoff, now, s.retention_batch)
        except redis.exceptions.OutOfMemoryError:
            # A deletion's first write is a deletion, which a full Redis accepts; one that must
            # write first (a host's open mutations end, a template waits) is refused: the
            # other kinds still free memory.
            log.warning("retention: Redis is full; %s not swept this run", kind)
            deleted[kind] = 0
    deleted[HISTORY] = retention.trim_template_history(
        r, s.template_history, s.retention_batch, now
    )
    if any(deleted.values()):
        log.info("retention: deleted %s", {k: n for k, n in deleted.items() if n})
    return deleted
