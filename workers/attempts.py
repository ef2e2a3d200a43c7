"""Ending a fire's attempt, the way every path that ends one shares: the fire task (a target it
cannot start), the supervisor (the executor's outcome) and a worker shutting down. Each ending
loses quietly to one already recorded (the job's own terminal PATCH, the lease sweep)."""

from __future__ import annotations

import contextlib
import logging

import redis

from dispatchyard.state import clock, jobs
from dispatchyard.state.errors import StateError
from dispatchyard.state.job_shape import ErrorInfo, JobProvenance
from dispatchyard.state.models import JobState

log = logging.getLogger(__name__)


def unavailable(r: redis.Redis, job_id: str, attempt_id: str, reason: str) -> str:
    """End the attempt `unavailable` with `reason` (unless it ended first); returns `reason`."""
    with contextlib.suppress(StateError):  # it ended some other way first
        jobs.finish_attempt(
            r,
            job_id,
            attempt_id,
            state=JobState.UNAVAILABLE,
            reason=reason,
            error={"reason": reason},
            now_ms=clock.now_ms(),
        )
    return reason


def finish(
    r: redis.Redis,
    job_id: str,
    attempt_id: str,
    *,
    state: JobState,
    reason: str,
    exit_code: int | None = None,
    result_summary: str | None = None,
    error: ErrorInfo | None = None,
    provenance: JobProvenance | None = None,
) -> None:
    """End the attempt as jobs.finish_attempt would, unless it ended first."""
    try:
        jobs.finish_attempt(
            r,
            job_id,
            attempt_id,
            now_ms=clock.now_ms(),
            state=state,
            reason=reason,
            exit_code=exit_code,
            result_summary=result_summary,
            error=error,
            provenance=provenance,
        )
    except StateError as refused:
        # The job's own terminal PATCH (or the lease sweep) got there first; that report wins.
        log.info("outcome of %s not recorded: %s", attempt_id, refused.message)


def cancelled(r: redis.Redis, job_id: str, attempt_id: str, code: int | None) -> None:
    """End the attempt `cancelled` with the reason its cancel request gave."""
    doc = jobs.get(r, job_id)
    reason = (doc.get("cancellation_reason") if doc else None) or "cancel_requested"
    finish(r, job_id, attempt_id, state=JobState.CANCELLED, reason=reason, exit_code=code)
