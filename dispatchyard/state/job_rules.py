"""The transitions of a durable job, as pure functions: each takes the document (edited in
place), the time and its inputs, and returns the Write to store or raises a StateError
(Conflict: the job's state does not allow it; Invalid: no job could take the request). No
Redis: `state/jobs.py` applies them inside a transaction, and tests call them directly.

Every state change goes through `move`, which checks `JOB_TRANSITIONS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from dispatchyard.state.clock import iso, parse_ms
from dispatchyard.state.documents import Write
from dispatchyard.state.errors import Conflict, Invalid
from dispatchyard.state.job_shape import (
    Attempt,
    ErrorInfo,
    ExecutorInfo,
    JobDoc,
    JobProvenance,
    new_attempt,
)
from dispatchyard.state.models import (
    ATTEMPT_CHECKED,
    FIRE_FROM,
    JOB_ACTIVE,
    JOB_RUNNER_ONLY,
    JOB_STATES,
    JOB_TERMINAL,
    JOB_TRANSITIONS,
    JobState,
)

FIRE_KEYS_KEPT = 20
SUPERVISED = (JobState.DISPATCHING, JobState.RUNNING)  # states an attempt's supervisor holds
ENDABLE = (*SUPERVISED, JobState.AWAITING_INPUT, JobState.BLOCKED)  # where an attempt may end


def move(doc: JobDoc, state: JobState, reason: str | None, phase: str | None, now_ms: int) -> None:
    """Change the job's state, as the table allows; a terminal state stamps `completed_at`."""
    if state not in JOB_TRANSITIONS[JobState(doc["state"])]:
        raise Conflict(f"cannot move from {doc['state']} to {state}", state=doc["state"])
    doc["state"] = state
    doc["state_reason"] = reason
    if phase is not None:
        doc["phase"] = phase
    if state in JOB_TERMINAL and not doc.get("completed_at"):
        doc["completed_at"] = iso(now_ms)


def current_attempt(doc: JobDoc) -> Attempt | None:
    current = doc["runner"].get("current_attempt_id")
    for attempt in doc["runner"]["attempts"]:
        if attempt["attempt_id"] == current:
            return attempt
    return None


def _end_attempt(
    doc: JobDoc,
    status: str,
    now_ms: int,
    *,
    exit_code: int | None = None,
    error: ErrorInfo | None = None,
) -> None:
    """End the current attempt (once) as `status`; `error` replaces its error when given. Its
    exit code is None until it ends, so an ending without one leaves it None."""
    attempt = current_attempt(doc)
    if attempt is not None and attempt.get("ended_at") is None:
        attempt["status"] = status
        attempt["phase"] = status
        attempt["ended_at"] = iso(now_ms)
        attempt["exit_code"] = exit_code
        if error is not None:
            attempt["error"] = error
    doc["runner"]["lease_until"] = None


def _require_attempt(doc: JobDoc, attempt_id: str, states: tuple[str, ...]) -> Attempt:
    attempt = current_attempt(doc)
    if attempt is None or attempt["attempt_id"] != attempt_id:
        raise Conflict("stale_attempt", state=doc["state"])
    if doc["state"] not in states:
        raise Conflict("not_active", state=doc["state"])
    return attempt


def acquire(
    doc: JobDoc,
    now_ms: int,
    *,
    fire_key: str,
    why: str,
    lease_ms: int,
    machine: str,
    attempt_id: str,
) -> Write:
    """Start attempt `attempt_id`: -> `dispatching`, with a lease. A fire key is used once: a
    redelivered fire message, or a second beat, starts no second attempt. An expired or
    past-deadline job ends here instead."""
    runner = doc["runner"]
    if fire_key in runner.get("fire_keys", []):
        raise Conflict("duplicate_fire", state=doc["state"])
    if doc["state"] not in FIRE_FROM[why]:
        raise Conflict("not_fireable", state=doc["state"])
    if doc["cancel_requested"]:
        raise Conflict("cancel_requested", state=doc["state"])
    due = parse_ms(doc.get("due_at"))
    if why == "due" and due is not None and due > now_ms:
        raise Conflict("not_due", state=doc["state"])
    runner["fire_keys"] = [*runner.get("fire_keys", []), fire_key][-FIRE_KEYS_KEPT:]
    expires = parse_ms(doc.get("expires_at"))
    if expires is not None and expires <= now_ms:
        move(doc, JobState.EXPIRED, "expires_at_passed", "expired", now_ms)
        return Write({"stage": "expired"})
    deadline = parse_ms(doc.get("deadline_at"))
    if deadline is not None and deadline <= now_ms:
        move(doc, JobState.FAILED, "deadline_exceeded", "deadline_exceeded", now_ms)
        doc["error"] = {"reason": "deadline_exceeded"}
        return Write({"stage": "failed"})
    lease_until = iso(now_ms + lease_ms)
    runner["attempts"].append(new_attempt(attempt_id, why, machine, now_ms, lease_until))
    runner["attempt_count"] = len(runner["attempts"])
    runner["current_attempt_id"] = attempt_id
    runner["lease_until"] = lease_until
    move(doc, JobState.DISPATCHING, "dispatching", "acquired", now_ms)
    doc["error"] = {}
    return Write({"stage": "dispatched", "detail": {"attempt_id": attempt_id, "fire": why}})


def executor_started(
    doc: JobDoc,
    now_ms: int,
    *,
    attempt_id: str,
    executor: ExecutorInfo,
    provenance: JobProvenance,
    lease_ms: int,
) -> Write:
    """`dispatching` -> `running` (phase `executor_started`) with the process recorded."""
    attempt = _require_attempt(doc, attempt_id, (JobState.DISPATCHING,))
    if doc["cancel_requested"]:
        raise Conflict("cancel_requested", state=doc["state"])
    lease_until = iso(now_ms + lease_ms)
    attempt["status"] = "running"
    attempt["phase"] = "executor_started"
    attempt["executor"] = executor
    attempt["lease_until"] = lease_until
    doc["runner"]["lease_until"] = lease_until
    doc["provenance"].update(provenance)
    move(doc, JobState.RUNNING, "executor_started", "executor_started", now_ms)
    return Write({"stage": "executor_started", "detail": {"attempt_id": attempt_id, **executor}})


def delivered(
    doc: JobDoc, now_ms: int, *, attempt_id: str, peer_id: str, correlation_id: str
) -> Write:
    """`dispatching` -> `delivered`: a persistent job handed to a live peer as an ask. The peer
    reports `running` and a terminal state with the attempt id; no lease is held meanwhile."""
    attempt = _require_attempt(doc, attempt_id, (JobState.DISPATCHING,))
    if doc["cancel_requested"]:
        # Cancelled while its fire looked for a peer: nothing is handed over, and the lease
        # (still held) ends the attempt `cancelled`.
        raise Conflict("cancel_requested", state=doc["state"])
    attempt["status"] = "delivered"
    attempt["phase"] = "delivered"
    attempt["assigned_peer_id"] = peer_id
    attempt["correlation_id"] = correlation_id
    attempt["lease_until"] = None
    doc["runner"]["lease_until"] = None
    doc["assigned_peer_id"] = peer_id
    doc["correlation_id"] = correlation_id
    move(doc, JobState.DELIVERED, "ask_delivered", "delivered", now_ms)
    detail = {"peer_id": peer_id, "correlation_id": correlation_id}
    return Write({"stage": "delivered", "detail": detail})


def renew_lease(doc: JobDoc, now_ms: int, *, attempt_id: str, lease_ms: int) -> Write:
    attempt = _require_attempt(doc, attempt_id, SUPERVISED)
    lease_until = iso(now_ms + lease_ms)
    attempt["lease_until"] = lease_until
    doc["runner"]["lease_until"] = lease_until
    return Write()


def finish_attempt(
    doc: JobDoc,
    now_ms: int,
    *,
    attempt_id: str,
    state: JobState,
    reason: str,
    exit_code: int | None = None,
    result_summary: str | None = None,
    error: ErrorInfo | None = None,
    provenance: JobProvenance | None = None,
    from_states: tuple[str, ...] = ENDABLE,
) -> Write:
    """End the current attempt and the job in a terminal state. Conflict when the attempt is no
    longer current or the job already ended — e.g. the executor PATCHed its own terminal state
    first: that report wins."""
    _require_attempt(doc, attempt_id, from_states)
    _end_attempt(doc, state, now_ms, exit_code=exit_code, error=error or {})
    move(doc, state, reason, reason, now_ms)
    if result_summary is not None:
        doc["result_summary"] = result_summary
    if error is not None:
        doc["error"] = error
    if provenance:
        doc["provenance"].update(provenance)
    return Write()


def lease_lost(doc: JobDoc, now_ms: int, *, attempt_id: str) -> Write:
    """The lease of a supervised attempt ran out (its worker died): `cancelled` if a cancel was
    pending, else `unavailable` / `runner_interrupted`. Decided from the document the
    transaction read, so a cancel or renewal racing the sweep is seen."""
    lease = parse_ms(doc["runner"].get("lease_until"))
    if lease is None or lease > now_ms:
        raise Conflict("lease_held", state=doc["state"])
    error: ErrorInfo | None
    if doc["cancel_requested"]:
        reason = doc.get("cancellation_reason") or "cancel_requested"
        state, error = JobState.CANCELLED, None
    else:
        state, reason = JobState.UNAVAILABLE, "runner_interrupted"
        error = {"reason": reason}
    return finish_attempt(
        doc,
        now_ms,
        attempt_id=attempt_id,
        state=state,
        reason=reason,
        error=error,
        from_states=SUPERVISED,
    )


def end_without_attempt(doc: JobDoc, now_ms: int, *, state: JobState, reason: str) -> Write:
    """A queued job that ends before any attempt (expired, or cancelled)."""
    if doc["state"] != JobState.QUEUED:
        raise Conflict("not_queued", state=doc["state"])
    move(doc, state, reason, state, now_ms)
    return Write()


def deadline_exceeded(doc: JobDoc, now_ms: int) -> Write:
    """End an active job whose `deadline_at` has passed: failed / deadline_exceeded."""
    deadline = parse_ms(doc.get("deadline_at"))
    if doc["state"] not in JOB_ACTIVE or deadline is None or deadline > now_ms:
        raise Conflict("not_due", state=doc["state"])
    _end_attempt(doc, JobState.FAILED, now_ms, error={"reason": "deadline_exceeded"})
    move(doc, JobState.FAILED, "deadline_exceeded", "deadline_exceeded", now_ms)
    doc["error"] = {"reason": "deadline_exceeded"}
    return Write()


def note_waiting(doc: JobDoc, now_ms: int, *, reason: str) -> Write | None:
    """Say why a queued job is still waiting (e.g. `no_worker_for_machine`); None when there is
    nothing to say."""
    if doc["state"] != JobState.QUEUED or doc.get("state_reason") == reason:
        return None
    doc["state_reason"] = reason
    return Write({"stage": "waiting", "detail": {"reason": reason}})


def request_cancel(doc: JobDoc, now_ms: int, *, by: str | None, reason: str) -> Write:
    """Queued -> cancelled at once; terminal -> cancel fields stamped once (idempotent);
    active -> `cancel_requested`, and the attempt's supervisor stops the executor."""
    first = not doc["cancel_requested"]
    doc["cancel_requested"] = True
    if first:
        doc["cancel_requested_at"] = iso(now_ms)
        doc["cancel_requested_by_peer_id"] = by
        doc["cancellation_reason"] = reason
    attempt = current_attempt(doc)
    supervised = (
        doc["state"] in SUPERVISED and attempt is not None and attempt.get("ended_at") is None
    )
    if supervised:
        # Its supervisor stops the executor and records `cancelled` (or the lease sweep).
        doc["state_reason"] = reason
        return Write({"stage": "cancel_requested"})
    if doc["state"] in JOB_ACTIVE:
        # Nothing of ours runs it (queued, or a peer reported its state): it ends now.
        _end_attempt(doc, JobState.CANCELLED, now_ms)
        move(doc, JobState.CANCELLED, reason, "cancelled", now_ms)
    return Write()


ReportedField = Literal["progress", "result_summary", "result_data", "error", "artifacts"]
REPORTED_FIELDS: tuple[ReportedField, ...] = (
    "progress",
    "result_summary",
    "result_data",
    "error",
    "artifacts",
)


def report(doc: JobDoc, now_ms: int, *, update: Mapping[str, Any]) -> Write:
    """PATCH /jobs/{id}: a peer or the executor reports state. Terminal is final (the same
    terminal state again is idempotent); a runner-managed job needs the current `attempt_id`
    to reach completed/failed/cancelled."""
    target = update["state"]
    if target not in JOB_STATES:
        raise Invalid(f"state must be one of {sorted(map(str, JOB_STATES))}; got {target!r}")
    target = JobState(target)
    current = doc["runner"].get("current_attempt_id")
    if current and target in ATTEMPT_CHECKED:
        if not update.get("attempt_id"):
            raise Invalid("attempt_id is required for runner-managed job updates")
        if update["attempt_id"] != current:
            raise Conflict("stale attempt_id", state=doc["state"])
    previous = JobState(doc["state"])
    if target != previous and target not in JOB_TRANSITIONS[previous] - JOB_RUNNER_ONLY:
        if previous in JOB_TERMINAL:
            raise Invalid(
                f"terminal work {doc['job_id']} is already {previous}; "
                "terminal state cannot be changed"
            )
        raise Invalid(f"{target} is set by the runner, not by PATCH")
    doc["state"] = target
    doc["state_reason"] = update.get("state_reason")
    if update.get("phase") is not None:
        doc["phase"] = update["phase"]
    for name in REPORTED_FIELDS:
        if update.get(name) is not None:
            doc[name] = update[name]
    if update.get("provenance") is not None:
        doc["provenance"] = update["provenance"]
    if update.get("progress_note"):
        doc["progress_events"].append(
            {
                "at": iso(now_ms),
                "note": update["progress_note"],
                "state": target,
                "phase": doc.get("phase"),
            }
        )
    if target in JOB_TERMINAL:
        if not doc.get("completed_at"):
            doc["completed_at"] = iso(now_ms)
        if previous not in JOB_TERMINAL:
            _end_attempt(doc, target, now_ms)
    attempt = current_attempt(doc)
    if attempt is not None and target == JobState.RUNNING and attempt.get("ended_at") is None:
        attempt["status"] = "running"
    return Write({"stage": f"reported_{target}"})
