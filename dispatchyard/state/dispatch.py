"""When a due job's fire is sent: a job naming a machine waits (and says why) while that
machine has no live worker node; a sent fire is sent again if no attempt took it in time.
Resending is safe: a fire is idempotent by its key."""

from __future__ import annotations

from dispatchyard.state import jobs, liveness
from dispatchyard.state.job_shape import JobDoc, JobSummary, target_machine
from dispatchyard.state.store import Redis

RESEND_AFTER_MS = 30_000  # a fire not acquired by then is sent again (same key: no duplicate)
RECHECK_MS = 5_000  # a job waiting for its machine's worker is looked at again after this


def fire_key(job_id: str) -> str:
    """The key of a job's due fire: the same for every resend, so only one attempt starts."""
    return f"due:{job_id}"


def ready(r: Redis, doc: JobDoc | JobSummary, now_ms: int) -> bool:
    """Whether to send this queued job's fire now (from its document or its summary). Either
    way its next look is scheduled."""
    job_id = doc["job_id"]
    machine = target_machine(doc)
    if machine and not liveness.machine_alive(r, machine, now_ms):
        jobs.note_waiting(r, job_id, "no_worker_for_machine", now_ms)
        jobs.postpone(r, job_id, now_ms + RECHECK_MS)
        return False
    jobs.postpone(r, job_id, now_ms + RESEND_AFTER_MS)
    return True
