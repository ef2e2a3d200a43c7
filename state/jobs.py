"""Durable jobs (daemon.md §2).

A job is one JSON document, its wire status object, kept in `jobs:docs` beside a precomputed
summary in `jobs:summaries` (so listing 10,000 jobs is two HMGETs and no re-encoding), and a
small scalar hash `job:{id}` (state, cancel flag, current attempt) that supervisors poll and
that every change writes, so it is the key transactions WATCH.

Every change is optimistic: WATCH `job:{id}`, read the document, compute the change in Python
against `JOB_TRANSITIONS`, and write the document, its indexes, its `job_state_changed` event
and its trace stage in one MULTI/EXEC, retried if anything touched the job meanwhile. (Job
documents nest attempts and progress events; Lua's cjson cannot round-trip them faithfully —
empty arrays become objects — so these transitions live in Python, still atomic.)
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import redis

from state import keys
from state.models import (
    ATTEMPT_CHECKED,
    FIRE_FROM,
    JOB_ACTIVE,
    JOB_STATES,
    JOB_TERMINAL,
    JOB_TRANSITIONS,
)

DOCS = "jobs:docs"
SUMMARIES = "jobs:summaries"
EVENTS_MAXLEN = 100_000
TRACE_TTL_S = 24 * 3600
FIRE_KEYS_KEPT = 20

SUMMARY_KEYS = (
    "job_id", "work_id", "calendar_id", "recurring_id", "title", "kind", "state",
    "state_reason", "phase", "owner_peer_id", "assigned_peer_id", "repowire_session_id",
    "correlation_id", "circle", "created_by_peer_id", "source_kind", "source_id", "scope",
    "visibility", "created_at", "updated_at", "deadline_at", "expires_at", "due_at", "cron",
    "timezone", "overlap", "next_due_at", "last_occurrence_work_id", "last_materialized_at",
    "result_summary", "cancel_requested", "cancel_requested_at", "cancel_requested_by_peer_id",
    "cancellation_reason",
)  # fmt: skip
SUMMARY_EXECUTION_KEYS = ("target", "delivery", "process_scope", "continuity")
FILTERS = ("owner_peer_id", "created_by_peer_id", "repowire_session_id", "circle")


class Refused(Exception):
    """A change the job's current state does not allow; `reason` says why."""

    def __init__(self, reason: str, state: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.state = state


# ---- time and ids ----------------------------------------------------------------------------


def iso(ms: int) -> str:
    """Epoch ms -> ISO-8601 with offset, as the daemon group answers."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def parse_ms(value: Any) -> int | None:
    """An ISO-8601 timestamp (naive means UTC) -> epoch ms; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def new_job_id() -> str:
    return f"work-{secrets.token_hex(6)}"


def new_attempt_id() -> str:
    return f"attempt-{secrets.token_hex(6)}"


# ---- documents ---------------------------------------------------------------------------------


def new_doc(fields: dict[str, Any], now_ms: int, job_id: str | None = None) -> dict[str, Any]:
    """A queued job's status object, with every field of the wire shape present."""
    job_id = job_id or new_job_id()
    now = iso(now_ms)
    request = fields.get("request") or {}
    doc: dict[str, Any] = {
        "job_id": job_id,
        "work_id": job_id,
        "title": fields.get("title", ""),
        "kind": fields.get("kind", "general"),
        "state": "queued",
        "state_reason": fields.get("state_reason"),
        "phase": fields.get("phase"),
        "progress": {},
        "progress_events": [],
        "created_at": now,
        "updated_at": now,
        "result_summary": None,
        "result_data": {},
        "error": {},
        "artifacts": [],
        "cancel_requested": False,
        "cancel_requested_at": None,
        "cancel_requested_by_peer_id": None,
        "cancellation_reason": None,
        "completed_at": None,
        "request": request,
        "provenance": fields.get("provenance") or {},
        "execution": request.get("execution", {}),
        "runner": {"attempts": [], "attempt_count": 0, "current_attempt_id": None},
        "due_at": ((request.get("execution") or {}).get("schedule") or {}).get("due_at"),
        "links": {},
    }
    for name in (
        "owner_peer_id", "assigned_peer_id", "repowire_session_id", "correlation_id", "circle",
        "created_by_peer_id", "source_kind", "source_id", "scope", "deadline_at", "expires_at",
    ):  # fmt: skip
        doc[name] = fields.get(name)
    doc["visibility"] = fields.get("visibility", "circle")
    doc["protocol_cancel"] = None
    return doc


def summarize(doc: dict[str, Any]) -> dict[str, Any]:
    """The summary view: ids, state, ownership/routing, times, results, trimmed execution."""
    out = {k: doc[k] for k in SUMMARY_KEYS if k in doc}
    execution = doc.get("execution")
    if isinstance(execution, dict):
        out["execution"] = {k: execution[k] for k in SUMMARY_EXECUTION_KEYS if k in execution}
    return out


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def created_score(doc: dict[str, Any]) -> float:
    """Microseconds since the epoch: unique enough to order and page the list."""
    return datetime.fromisoformat(doc["created_at"]).timestamp() * 1_000_000


def _index_writes(
    pipe: redis.client.Pipeline, before: dict | None, after: dict, now_ms: int, due_ms: int | None
) -> None:
    """Keep every index in step with the document, in the caller's MULTI."""
    job_id = after["job_id"]
    score = created_score(after)
    state = after["state"]
    if before is None or before["state"] != state:
        if before is not None:
            pipe.zrem(keys.jobs_by_state(before["state"]), job_id)
        pipe.zadd(keys.jobs_by_state(state), {job_id: score})
    if state == "queued" and due_ms is not None:
        pipe.zadd(keys.JOBS_DUE, {job_id: due_ms})
    elif state != "queued":
        pipe.zrem(keys.JOBS_DUE, job_id)
    lease = parse_ms(after["runner"].get("lease_until"))
    if state in ("dispatching", "running") and lease is not None:
        pipe.zadd(keys.JOBS_LEASES, {job_id: lease})
    else:
        pipe.zrem(keys.JOBS_LEASES, job_id)
    expires = parse_ms(after.get("expires_at"))
    if state == "queued" and expires is not None:
        pipe.zadd(keys.JOBS_EXPIRY, {job_id: expires})
    else:
        pipe.zrem(keys.JOBS_EXPIRY, job_id)
    deadline = parse_ms(after.get("deadline_at"))
    if state in JOB_ACTIVE and deadline is not None:
        pipe.zadd(keys.JOBS_DEADLINES, {job_id: deadline})
    else:
        pipe.zrem(keys.JOBS_DEADLINES, job_id)


def _write(
    pipe: redis.client.Pipeline,
    before: dict | None,
    after: dict,
    now_ms: int,
    *,
    stage: str | None = None,
    detail: dict | None = None,
    due_ms: int | None = None,
) -> None:
    job_id = after["job_id"]
    after["updated_at"] = iso(now_ms)
    pipe.hset(DOCS, job_id, _dumps(after))
    pipe.hset(SUMMARIES, job_id, _dumps(summarize(after)))
    pipe.hset(
        keys.job(job_id),
        mapping={
            "state": after["state"],
            "cancel": "1" if after["cancel_requested"] else "0",
            "attempt": after["runner"].get("current_attempt_id") or "",
            "updated": now_ms,
        },
    )
    _index_writes(pipe, before, after, now_ms, due_ms)
    previous = before["state"] if before else None
    if previous != after["state"]:
        pipe.xadd(
            keys.EVENTS,
            {
                "type": "job_state_changed",
                "job_id": job_id,
                "state": after["state"],
                "previous_state": previous or "",
                "state_reason": after.get("state_reason") or "",
                "at": after["updated_at"],
            },
            maxlen=EVENTS_MAXLEN,
            approximate=True,
        )
    stage = stage or (after["state"] if previous != after["state"] else None)
    if stage:
        entry = {"stage": stage, "status": "ok", "ts": after["updated_at"], "state": after["state"]}
        if detail:
            entry["detail"] = detail
        pipe.rpush(keys.trace(job_id), _dumps(entry))
        pipe.expire(keys.trace(job_id), TRACE_TTL_S)


def create(
    r: redis.Redis, doc: dict[str, Any], now_ms: int, *, due_ms: int | None = None
) -> dict[str, Any]:
    """Store a new queued job. `due_ms` is when the dispatcher should (re)send its fire;
    None keeps it out of the due index (a buffered child waits for its release)."""
    pipe = r.pipeline(transaction=True)
    write_new(pipe, doc, now_ms, due_ms=due_ms)
    pipe.execute()
    return doc


def write_new(
    pipe: redis.client.Pipeline, doc: dict[str, Any], now_ms: int, *, due_ms: int | None
) -> None:
    """The commands that store a new job, for a caller's MULTI."""
    pipe.zadd(keys.JOBS_ALL, {doc["job_id"]: created_score(doc)})
    for name in FILTERS:
        if doc.get(name):
            pipe.zadd(keys.jobs_by(name, doc[name]), {doc["job_id"]: created_score(doc)})
    _write(pipe, None, doc, now_ms, stage="created", due_ms=due_ms)


def get(r: redis.Redis, job_id: str) -> dict[str, Any] | None:
    raw = r.hget(DOCS, job_id)
    return json.loads(raw) if raw else None


def raw_doc(r: redis.Redis, job_id: str) -> str | None:
    """The stored status object, already JSON (routes answer with it as is)."""
    return r.hget(DOCS, job_id)  # type: ignore[return-value]


def flags(r: redis.Redis, job_id: str) -> dict[str, str]:
    """The scalars a supervisor polls: state, cancel ('1'/'0'), current attempt."""
    return r.hgetall(keys.job(job_id))  # type: ignore[return-value]


def mutate(
    r: redis.Redis,
    job_id: str,
    change: Callable[[dict[str, Any]], dict[str, Any] | None],
    now_ms: int,
) -> dict[str, Any] | None:
    """Apply `change` atomically. It edits the document in place and may return write options
    (`stage`, `detail`, `due_ms`, `extra` — a callable adding commands to the MULTI), or raise
    Refused. Returns the new document, or None for an unknown job."""

    def txn(pipe: redis.client.Pipeline) -> dict[str, Any] | None:
        raw = pipe.hget(DOCS, job_id)
        if raw is None:
            return None
        before = json.loads(raw)
        after = json.loads(raw)
        opts = change(after) or {}
        pipe.multi()
        extra = opts.pop("extra", None)
        _write(pipe, before, after, now_ms, **opts)
        if extra is not None:
            extra(pipe)
        return after

    return r.transaction(txn, keys.job(job_id), value_from_callable=True)  # type: ignore[arg-type, return-value]


def check_move(doc: dict[str, Any], target: str) -> None:
    if target not in JOB_TRANSITIONS[doc["state"]]:
        raise Refused(f"cannot move from {doc['state']} to {target}", doc["state"])


def _set_state(doc: dict, state: str, reason: str | None, phase: str | None, now_ms: int) -> None:
    check_move(doc, state)
    doc["state"] = state
    doc["state_reason"] = reason
    if phase is not None:
        doc["phase"] = phase
    if state in JOB_TERMINAL and not doc.get("completed_at"):
        doc["completed_at"] = iso(now_ms)


def current_attempt(doc: dict[str, Any]) -> dict[str, Any] | None:
    current = doc["runner"].get("current_attempt_id")
    for attempt in doc["runner"]["attempts"]:
        if attempt["attempt_id"] == current:
            return attempt
    return None


def _end_attempt(doc: dict, status: str, now_ms: int, **fields: Any) -> None:
    attempt = current_attempt(doc)
    if attempt is not None and attempt.get("ended_at") is None:
        attempt.update(status=status, phase=status, ended_at=iso(now_ms), **fields)
    doc["runner"]["lease_until"] = None


# ---- transitions ------------------------------------------------------------------------------


def acquire(
    r: redis.Redis,
    job_id: str,
    *,
    fire_key: str,
    why: str,
    now_ms: int,
    lease_ms: int,
    machine: str,
) -> dict[str, Any]:
    """Start a new attempt: `queued` (or failed/unavailable/delivered for run/retry) ->
    `dispatching`, with a lease. A fire key is used once: a redelivered fire message, or a
    second beat, starts no second attempt. Expired or past-deadline jobs end here instead."""

    def change(doc: dict) -> dict:
        runner = doc["runner"]
        if fire_key in runner.get("fire_keys", []):
            raise Refused("duplicate_fire", doc["state"])
        if doc["state"] not in FIRE_FROM[why]:
            raise Refused("not_fireable", doc["state"])
        if doc["cancel_requested"]:
            raise Refused("cancel_requested", doc["state"])
        due = parse_ms(doc.get("due_at"))
        if why == "due" and due is not None and due > now_ms:
            raise Refused("not_due", doc["state"])
        runner["fire_keys"] = [*runner.get("fire_keys", []), fire_key][-FIRE_KEYS_KEPT:]
        expires = parse_ms(doc.get("expires_at"))
        if expires is not None and expires <= now_ms:
            _set_state(doc, "expired", "expires_at_passed", "expired", now_ms)
            return {"stage": "expired"}
        deadline = parse_ms(doc.get("deadline_at"))
        if deadline is not None and deadline <= now_ms:
            _set_state(doc, "failed", "deadline_exceeded", "deadline_exceeded", now_ms)
            doc["error"] = {"reason": "deadline_exceeded"}
            return {"stage": "failed"}
        attempt_id = new_attempt_id()
        lease_until = iso(now_ms + lease_ms)
        runner["attempts"].append(
            {
                "attempt_id": attempt_id,
                "status": "dispatching",
                "phase": "acquired",
                "fire": why,
                "started_at": iso(now_ms),
                "ended_at": None,
                "exit_code": None,
                "executor": None,
                "machine": machine,
                "lease_until": lease_until,
                "error": {},
            }
        )
        runner.update(
            attempt_count=len(runner["attempts"]),
            current_attempt_id=attempt_id,
            lease_until=lease_until,
        )
        _set_state(doc, "dispatching", "dispatching", "acquired", now_ms)
        doc["error"] = {}
        return {"stage": "dispatched", "detail": {"attempt_id": attempt_id, "fire": why}}

    doc = mutate(r, job_id, change, now_ms)
    if doc is None:
        raise Refused("not_found")
    return doc


def _require_attempt(doc: dict, attempt_id: str, states: tuple[str, ...]) -> dict:
    attempt = current_attempt(doc)
    if attempt is None or attempt["attempt_id"] != attempt_id:
        raise Refused("stale_attempt", doc["state"])
    if doc["state"] not in states:
        raise Refused("not_active", doc["state"])
    return attempt


def executor_started(
    r: redis.Redis,
    job_id: str,
    attempt_id: str,
    *,
    executor: dict[str, Any],
    provenance: dict[str, Any],
    now_ms: int,
    lease_ms: int,
) -> dict[str, Any]:
    """`dispatching` -> `running` (phase `executor_started`) with the process recorded."""

    def change(doc: dict) -> dict:
        attempt = _require_attempt(doc, attempt_id, ("dispatching",))
        if doc["cancel_requested"]:
            raise Refused("cancel_requested", doc["state"])
        lease_until = iso(now_ms + lease_ms)
        attempt.update(status="running", phase="executor_started", executor=executor,
                       lease_until=lease_until)  # fmt: skip
        doc["runner"]["lease_until"] = lease_until
        doc["provenance"].update(provenance)
        _set_state(doc, "running", "executor_started", "executor_started", now_ms)
        return {"stage": "executor_started", "detail": {"attempt_id": attempt_id, **executor}}

    return _must(mutate(r, job_id, change, now_ms))


def delivered(
    r: redis.Redis,
    job_id: str,
    attempt_id: str,
    *,
    peer_id: str,
    correlation_id: str,
    now_ms: int,
) -> dict[str, Any]:
    """`dispatching` -> `delivered`: a persistent job handed to a live peer as an ask. The peer
    reports `running` and a terminal state with the attempt id; no lease is held meanwhile."""

    def change(doc: dict) -> dict:
        attempt = _require_attempt(doc, attempt_id, ("dispatching",))
        attempt.update(status="delivered", phase="delivered", assigned_peer_id=peer_id,
                       correlation_id=correlation_id, lease_until=None)  # fmt: skip
        doc["runner"]["lease_until"] = None
        doc["assigned_peer_id"] = peer_id
        doc["correlation_id"] = correlation_id
        _set_state(doc, "delivered", "ask_delivered", "delivered", now_ms)
        return {"stage": "delivered", "detail": {"peer_id": peer_id,
                                                 "correlation_id": correlation_id}}  # fmt: skip

    return _must(mutate(r, job_id, change, now_ms))


def renew_lease(
    r: redis.Redis, job_id: str, attempt_id: str, now_ms: int, lease_ms: int
) -> dict[str, Any]:
    def change(doc: dict) -> dict:
        attempt = _require_attempt(doc, attempt_id, ("dispatching", "running"))
        lease_until = iso(now_ms + lease_ms)
        attempt["lease_until"] = lease_until
        doc["runner"]["lease_until"] = lease_until
        return {}

    return _must(mutate(r, job_id, change, now_ms))


def finish_attempt(
    r: redis.Redis,
    job_id: str,
    attempt_id: str,
    *,
    state: str,
    reason: str,
    now_ms: int,
    exit_code: int | None = None,
    result_summary: str | None = None,
    error: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
    from_states: tuple[str, ...] = ("dispatching", "running", "awaiting_input", "blocked"),
    extra: Callable[[redis.client.Pipeline], None] | None = None,
) -> dict[str, Any]:
    """End the current attempt and the job in a terminal state (completed, failed, cancelled,
    unavailable). Refused when the attempt is no longer current or the job already ended —
    e.g. the executor PATCHed its own terminal state first: that report wins."""

    def change(doc: dict) -> dict:
        _require_attempt(doc, attempt_id, from_states)
        _end_attempt(doc, state, now_ms, exit_code=exit_code, error=error or {})
        _set_state(doc, state, reason, reason, now_ms)
        if result_summary is not None:
            doc["result_summary"] = result_summary
        if error is not None:
            doc["error"] = error
        if provenance:
            doc["provenance"].update(provenance)
        return {"extra": extra}

    return _must(mutate(r, job_id, change, now_ms))


def end_without_attempt(
    r: redis.Redis, job_id: str, *, state: str, reason: str, now_ms: int
) -> dict[str, Any]:
    """A queued job that ends before any attempt (expired, or cancelled)."""

    def change(doc: dict) -> dict:
        if doc["state"] != "queued":
            raise Refused("not_queued", doc["state"])
        _set_state(doc, state, reason, state, now_ms)
        return {}

    return _must(mutate(r, job_id, change, now_ms))


def deadline_exceeded(r: redis.Redis, job_id: str, now_ms: int) -> bool:
    """End an active job whose `deadline_at` has passed: failed / deadline_exceeded."""

    def change(doc: dict) -> dict:
        deadline = parse_ms(doc.get("deadline_at"))
        if doc["state"] not in JOB_ACTIVE or deadline is None or deadline > now_ms:
            raise Refused("not_due", doc["state"])
        _end_attempt(doc, "failed", now_ms, error={"reason": "deadline_exceeded"})
        _set_state(doc, "failed", "deadline_exceeded", "deadline_exceeded", now_ms)
        doc["error"] = {"reason": "deadline_exceeded"}
        return {}

    try:
        return mutate(r, job_id, change, now_ms) is not None
    except Refused:
        return False


def note_waiting(r: redis.Redis, job_id: str, reason: str, now_ms: int) -> None:
    """Say why a queued job is still waiting (e.g. `no_worker_for_machine`)."""

    def change(doc: dict) -> dict:
        if doc["state"] != "queued" or doc.get("state_reason") == reason:
            raise Refused("unchanged", doc["state"])
        doc["state_reason"] = reason
        return {"stage": "waiting", "detail": {"reason": reason}}

    with contextlib.suppress(Refused):
        mutate(r, job_id, change, now_ms)


def request_cancel(
    r: redis.Redis, job_id: str, *, by: str | None, reason: str, now_ms: int
) -> dict[str, Any] | None:
    """Queued -> cancelled at once; terminal -> cancel fields stamped once (idempotent);
    active -> `cancel_requested`, and the attempt's supervisor stops the executor."""

    def change(doc: dict) -> dict:
        first = not doc["cancel_requested"]
        doc["cancel_requested"] = True
        if first:
            doc["cancel_requested_at"] = iso(now_ms)
            doc["cancel_requested_by_peer_id"] = by
            doc["cancellation_reason"] = reason
        attempt = current_attempt(doc)
        supervised = (
            doc["state"] in ("dispatching", "running")
            and attempt is not None
            and attempt.get("ended_at") is None
        )
        if supervised:
            # Its supervisor stops the executor and records `cancelled` (or the lease sweep).
            doc["state_reason"] = reason
            return {"stage": "cancel_requested"}
        if doc["state"] in JOB_ACTIVE:
            # Nothing of ours runs it (queued, or a peer reported its state): it ends now.
            _end_attempt(doc, "cancelled", now_ms)
            _set_state(doc, "cancelled", reason, "cancelled", now_ms)
        return {}

    return mutate(r, job_id, change, now_ms)


def patch(
    r: redis.Redis, job_id: str, update: dict[str, Any], now_ms: int
) -> dict[str, Any] | None:
    """PATCH /jobs/{id}: a peer or the executor reports state. Terminal is final (the same
    terminal state again is idempotent); a runner-managed job needs the current `attempt_id`
    to reach completed/failed/cancelled."""
    target = update["state"]

    def change(doc: dict) -> dict:
        if target not in JOB_STATES:
            raise Refused(f"state must be one of {sorted(JOB_STATES)}; got {target!r}")
        current = doc["runner"].get("current_attempt_id")
        if current and target in ATTEMPT_CHECKED:
            if not update.get("attempt_id"):
                raise Refused("attempt_id is required for runner-managed job updates")
            if update["attempt_id"] != current:
                raise Refused("stale_attempt")
        if doc["state"] in JOB_TERMINAL and target != doc["state"]:
            raise Refused(
                f"terminal work {job_id} is already {doc['state']}; "
                "terminal state cannot be changed"
            )
        if target == "dispatching" and doc["state"] != "dispatching":
            raise Refused("dispatching is set by the runner, not by PATCH")
        previous = doc["state"]
        doc["state"] = target
        doc["state_reason"] = update.get("state_reason")
        if update.get("phase") is not None:
            doc["phase"] = update["phase"]
        for name in ("progress", "result_summary", "result_data", "error", "artifacts"):
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
        if attempt is not None and target == "running" and attempt.get("ended_at") is None:
            attempt["status"] = "running"
        return {"stage": f"reported_{target}"}

    return mutate(r, job_id, change, now_ms)


def _must(doc: dict[str, Any] | None) -> dict[str, Any]:
    if doc is None:
        raise Refused("not_found")
    return doc


# ---- reading -------------------------------------------------------------------------------


def due(r: redis.Redis, now_ms: int, batch: int = 1000) -> list[str]:
    """Queued jobs whose fire should be sent (or re-sent) now."""
    return r.zrangebyscore(keys.JOBS_DUE, "-inf", now_ms, 0, batch)  # type: ignore[return-value]


def postpone(r: redis.Redis, job_id: str, until_ms: int) -> None:
    """Move a queued job's next dispatch check (only if it is still waiting)."""
    r.zadd(keys.JOBS_DUE, {job_id: until_ms}, xx=True)


def expired_leases(r: redis.Redis, now_ms: int, batch: int = 1000) -> list[str]:
    return r.zrangebyscore(keys.JOBS_LEASES, "-inf", now_ms, 0, batch)  # type: ignore[return-value]


def past(r: redis.Redis, index: str, now_ms: int, batch: int = 1000) -> list[str]:
    return r.zrangebyscore(index, "-inf", now_ms, 0, batch)  # type: ignore[return-value]


def list_ids(
    r: redis.Redis,
    *,
    state: str | None,
    filters: dict[str, str],
    limit: int | None,
    cursor: tuple[float, str] | None,
) -> tuple[list[str], tuple[float, str] | None]:
    """Job ids newest first, read from the most selective index (other filters checked on the
    summaries), and the cursor of the last one when a page was asked for."""
    candidates = [(keys.jobs_by_state(state), "state", state)] if state else []
    candidates += [(keys.jobs_by(name, value), name, value) for name, value in filters.items()]
    if not candidates:
        chosen: tuple[str, str, str] | None = None
    elif len(candidates) == 1:
        chosen = candidates[0]
    else:
        pipe = r.pipeline(transaction=False)
        for key, _, _ in candidates:
            pipe.zcard(key)
        chosen = candidates[min(range(len(candidates)), key=pipe.execute().__getitem__)]
    rest = [(c[1], c[2]) for c in candidates if c is not chosen]
    index = chosen[0] if chosen else keys.JOBS_ALL
    top: float | str = "+inf" if cursor is None else cursor[0]
    num = -1 if limit is None or rest else limit + 64  # ties on the cursor's score are skipped
    rows: list[tuple[str, float]] = r.zrevrangebyscore(  # type: ignore[assignment]
        index, top, "-inf", start=0, num=num, withscores=True
    )
    if cursor is not None:
        rows = [(i, s) for i, s in rows if s < cursor[0] or i < cursor[1]]
    if rest:
        summaries = raw_many(r, [i for i, _ in rows], summary=True, keep_missing=True)
        kept = []
        for row, raw in zip(rows, summaries, strict=True):
            doc = json.loads(raw) if raw else None
            if doc and all(doc.get(name) == value for name, value in rest):
                kept.append(row)
        rows = kept
    if limit is not None:
        rows = rows[:limit]
    next_cursor = rows[-1][::-1] if limit is not None and len(rows) == limit else None
    return [i for i, _ in rows], next_cursor  # type: ignore[return-value]


def raw_chunks(
    r: redis.Redis, job_ids: list[str], *, summary: bool, size: int = 500
) -> Iterator[list[str]]:
    """Stored JSON of these jobs, a chunk at a time (a long list is streamed, not held)."""
    for start in range(0, len(job_ids), size):
        yield raw_many(r, job_ids[start : start + size], summary=summary)


def raw_many(
    r: redis.Redis, job_ids: list[str], *, summary: bool, keep_missing: bool = False
) -> list[Any]:
    if not job_ids:
        return []
    values = r.hmget(SUMMARIES if summary else DOCS, job_ids)
    return list(values) if keep_missing else [v for v in values if v]  # type: ignore[union-attr]


def trace(r: redis.Redis, trace_id: str) -> list[dict[str, Any]]:
    stages = [json.loads(s) for s in r.lrange(keys.trace(trace_id), 0, -1)]  # type: ignore[union-attr]
    return [{"seq": i + 1, **s} for i, s in enumerate(stages)]
