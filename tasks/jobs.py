"""Job fires: acquire an attempt, start its executor (per_fire) or deliver it (persistent),
supervise it to the end, and reap what a dead worker left behind.

A fire task is idempotent by its fire key: acquiring records the key in the job, so a
redelivered message, a second beat or a resend by the scheduler starts no second attempt.
The task returns once the executor has started; a thread of the worker process supervises it
(lease renewal, cancel, deadline, exit), so long agent runs do not hold Celery pool slots that
the scheduler tick and the sweeps need. If the worker dies, the lease runs out and the lease
sweep ends the attempt and reaps the process group on that host.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import redis
from celery import signals

from dispatchyard.settings import get_settings
from dispatchyard.state import asks, clock, dispatch, jobs, messaging, peers, templates
from dispatchyard.state import executors as executor_records
from dispatchyard.state.clock import iso, parse_ms
from dispatchyard.state.job_shape import target_machine
from dispatchyard.state.models import JOB_TERMINAL, PEER_CONNECTED, JobState
from tasks import names
from tasks.store import redis_client
from workers import executors
from workers.app import app
from workers.backends import Backend

log = logging.getLogger(__name__)

POLL_S = 0.1  # how often a supervisor looks at its process and the job's cancel flag
# attempt id -> (job id, executor): the fires this process supervises, for the shutdown path.
_supervised: dict[str, tuple[str, executors.Executor]] = {}
_lock = threading.Lock()
_shutting_down = False


def machine_name() -> str:
    return get_settings().machine_name()


def send_fire(job_id: str, machine: str | None, fire_key: str, why: str = "due") -> None:
    """Queue a fire: on the job's machine's own queue when it names one."""
    fire.apply_async((job_id, fire_key, why), queue=names.queue_for(machine))


@app.task(name=names.FIRE)
def fire(job_id: str, fire_key: str, why: str = "due") -> str:
    r = redis_client()
    s = get_settings()
    try:
        doc = jobs.acquire(
            r,
            job_id,
            fire_key=fire_key,
            why=why,
            now_ms=clock.now_ms(),
            lease_ms=int(s.job_lease_s * 1000),
            machine=machine_name(),
        )
    except jobs.Refused as refused:
        log.info("fire %s of %s refused: %s", fire_key, job_id, refused.reason)
        return refused.reason
    if doc["state"] != JobState.DISPATCHING:
        return doc["state"]  # expired or past its deadline: ended at acquire
    attempt_id = doc["runner"]["current_attempt_id"]
    execution = doc.get("execution") or {}
    target = execution.get("target") or {}
    scope = execution.get("process_scope")
    if scope == "per_fire":
        return _start_per_fire(r, doc, attempt_id)
    if scope == "persistent" or doc.get("assigned_peer_id") or target.get("assigned_peer_id"):
        return _deliver_to_peer(r, doc, attempt_id)
    return _unavailable(r, job_id, attempt_id, "missing_target")


def _deliver_to_peer(r: redis.Redis, doc: dict[str, Any], attempt_id: str) -> str:
    """A persistent job becomes an ask over the live WebSocket of a peer: the assigned one, or
    a connected peer working in the same path with the same backend in the same circle. The
    ask is opened and the job marked `delivered` in one transaction; a peer with no live socket
    (before or at the hand-off) ends the attempt `unavailable` / `assigned_peer_offline`."""
    job_id = doc["job_id"]
    target = (doc.get("execution") or {}).get("target") or {}
    assigned = doc.get("assigned_peer_id") or target.get("assigned_peer_id")
    circle = doc.get("circle") or "global"
    if assigned:
        found = peers.resolve(r, assigned, None if assigned.startswith("repow-") else circle)
        peer = found if isinstance(found, dict) else None
    else:
        peer = peers.find_online(
            r, path=target.get("path"), backend=target.get("backend"), circle=circle
        )
    if peer is None or peer.get("status") not in PEER_CONNECTED or not peer.get("ws_connected"):
        return _unavailable(r, job_id, attempt_id, "assigned_peer_offline")
    now = clock.now_ms()
    cid = asks.new_id()
    text = _ask_text(doc, attempt_id)
    extra = {"job_id": job_id, "attempt_id": attempt_id}

    def open_ask(pipe: redis.client.Pipeline) -> None:
        asks.write_open(
            pipe,
            from_peer=RUNNER_PEER,
            to_peer_id=peer["peer_id"],
            to_peer=peer["name"],
            text=text,
            now_ms=now,
            correlation_id=cid,
            extra=extra,
        )

    try:
        jobs.delivered(
            r,
            job_id,
            attempt_id,
            peer_id=peer["peer_id"],
            correlation_id=cid,
            now_ms=now,
            extra=open_ask,
        )
    except jobs.Refused:
        return "superseded"  # cancelled or ended meanwhile: nothing was opened
    frame = messaging.ask_frame(cid, RUNNER_PEER, peer["name"], text)
    if messaging.send_frame(r, peer, frame, cid, clock.now_ms()):
        return "delivered"
    # Its socket went away between the look and the hand-off.
    asks.close(r, cid, clock.now_ms(), reason="no_connection")
    with contextlib.suppress(jobs.Refused):
        jobs.finish_attempt(
            r,
            job_id,
            attempt_id,
            state=JobState.UNAVAILABLE,
            reason="assigned_peer_offline",
            error={"reason": "assigned_peer_offline"},
            now_ms=clock.now_ms(),
            from_states=(JobState.DELIVERED,),
        )
    return "assigned_peer_offline"


RUNNER_PEER = "dispatchyard-runner"


def _ask_text(doc: dict[str, Any], attempt_id: str) -> str:
    body = ((doc.get("execution") or {}).get("prompt") or {}).get("body") or doc.get("title")
    return (
        f"[dispatchyard durable job]\njob_id: {doc['job_id']}\nattempt_id: {attempt_id}\n\n"
        f"{body}\n\nFirst PATCH /jobs/{doc['job_id']} to state=running with this attempt_id, "
        "before longer work. When done, PATCH it to a terminal state with the same attempt_id. "
        "An ack only confirms receipt."
    )


def _unavailable(r: redis.Redis, job_id: str, attempt_id: str, reason: str) -> str:
    with contextlib.suppress(jobs.Refused):  # it ended some other way first
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


def _start_per_fire(r: redis.Redis, doc: dict[str, Any], attempt_id: str) -> str:
    s = get_settings()
    job_id = doc["job_id"]
    execution = doc["execution"]
    target = execution.get("target") or {}
    path, name = target.get("path"), target.get("backend")
    if not path or not name:
        return _unavailable(r, job_id, attempt_id, "missing_target")
    if name not in s.backends:
        return _unavailable(r, job_id, attempt_id, "invalid_backend")
    if not os.path.isdir(path):
        return _unavailable(r, job_id, attempt_id, "path_not_found")
    backend = Backend.from_settings(name, s.backends[name])
    prompt = (execution.get("prompt") or {}).get("body") or doc.get("title") or ""
    session_id, continuity = _continuity(r, doc, backend, path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHYARD_")}
    env.update(
        DISPATCHYARD_JOB_ID=job_id,
        DISPATCHYARD_ATTEMPT_ID=attempt_id,
        DISPATCHYARD_URL=s.platform_url,
    )
    log_dir = Path(s.data_dir) / "executors" / job_id / attempt_id
    try:
        executor = executors.spawn(backend.argv(prompt, path, session_id), path, env, log_dir)
    except OSError as e:
        return _unavailable(r, job_id, attempt_id, f"spawn_failed: {type(e).__name__}")
    machine = machine_name()
    record = {"job_id": job_id, "pid": executor.pid, "started_ms": clock.now_ms()}
    executor_records.remember(r, machine, attempt_id, record)
    info = {"pid": executor.pid, "pgid": executor.pid, "host": machine, "argv0": backend.name}
    try:
        jobs.executor_started(
            r,
            job_id,
            attempt_id,
            executor=info,
            provenance={"continuity": continuity},
            now_ms=clock.now_ms(),
            lease_ms=int(s.job_lease_s * 1000),
        )
    except jobs.Refused:
        # Cancelled (or superseded) between acquire and start: the process must not outlive it.
        executor.stop(s.job_kill_grace_s)
        executor_records.forget(r, machine, attempt_id)
        _end_cancelled(r, job_id, attempt_id, executor.proc.returncode)
        return "cancelled_before_start"
    with _lock:
        _supervised[attempt_id] = (job_id, executor)
    threading.Thread(
        target=_supervise,
        args=(doc, attempt_id, executor, backend, path),
        name=f"supervise-{attempt_id}",
        daemon=True,
    ).start()
    return "executor_started"


def _continuity(
    r: redis.Redis, doc: dict[str, Any], backend: Backend, path: str
) -> tuple[str | None, dict[str, Any]]:
    """Whether this fire resumes the previous fire's runtime session, and why (or why not)."""
    mode = (doc.get("execution") or {}).get("continuity") or "fresh"
    if mode == "fresh":
        return None, {"mode": "fresh", "resumed": False, "reason": "continuity_fresh"}

    def fresh(reason: str) -> tuple[None, dict[str, Any]]:
        return None, {"mode": "resume", "resumed": False, "reason": reason}

    if doc.get("source_kind") != "calendar" or not doc.get("source_id"):
        return fresh("no_previous_fire")
    template = templates.get(r, doc["source_id"]) or {}
    binding = (template.get("provenance") or {}).get("runtime_binding")
    if not binding:
        return fresh("no_runtime_binding")
    if binding.get("backend") != backend.name:
        return fresh("backend_changed")
    if _norm(binding.get("path")) != _norm(path):
        return fresh("path_changed")
    if binding.get("circle") != (doc.get("circle") or "default"):
        return fresh("circle_changed")
    if not binding.get("runtime_session_id"):
        return fresh("no_runtime_session_id")
    if not backend.can_resume:
        return fresh("backend_cannot_resume")
    sid = binding["runtime_session_id"]
    return sid, {"mode": "resume", "resumed": True, "runtime_session_id": sid}


def _norm(path: str | None) -> str:
    return str(Path(path).expanduser().resolve()) if path else ""


def _supervise(
    doc: dict[str, Any],
    attempt_id: str,
    executor: executors.Executor,
    backend: Backend,
    path: str,
) -> None:
    """Wait for the executor; renew the lease; stop it on cancel, deadline, or when the job
    ended by other means (its own terminal PATCH, the lease sweep); record the outcome."""
    s = get_settings()
    r = redis_client()
    job_id = doc["job_id"]
    lease_ms = int(s.job_lease_s * 1000)
    renew_every = lease_ms // 3
    next_renew = clock.now_ms() + renew_every
    deadline = parse_ms(doc.get("deadline_at"))
    outcome = "exited"
    try:
        while True:
            try:
                executor.proc.wait(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            now = clock.now_ms()
            try:
                flags = jobs.flags(r, job_id)
                if flags.get("attempt") != attempt_id or flags.get("state") in JOB_TERMINAL:
                    outcome = "superseded"
                elif flags.get("cancel") == "1":
                    outcome = "cancelled"
                elif deadline is not None and now >= deadline:
                    outcome = "deadline"
                elif now >= next_renew:
                    jobs.renew_lease(r, job_id, attempt_id, now, lease_ms)
                    next_renew = now + renew_every
            except jobs.Refused:
                outcome = "superseded"
            except redis.exceptions.RedisError:
                continue  # the store is away: keep the agent running, look again shortly
            if outcome != "exited":
                executor.stop(s.job_kill_grace_s)
                break
        executor.kill_leftovers()
        _record_outcome(r, doc, attempt_id, executor, backend, path, outcome)
    except Exception:
        log.exception("supervising %s of %s failed", attempt_id, job_id)
        executor.stop(s.job_kill_grace_s)
    finally:
        with _lock:
            _supervised.pop(attempt_id, None)
        with contextlib.suppress(redis.exceptions.RedisError):
            executor_records.forget(r, machine_name(), attempt_id)


def _record_outcome(
    r: redis.Redis,
    doc: dict[str, Any],
    attempt_id: str,
    executor: executors.Executor,
    backend: Backend,
    path: str,
    outcome: str,
) -> None:
    job_id = doc["job_id"]
    if _shutting_down:
        return  # the shutdown path ends this attempt as runner_interrupted
    now = clock.now_ms()
    code = executor.proc.returncode
    stdout, stderr = executor.output()
    session_id = backend.session_id(stdout)
    binding = None
    if session_id:
        binding = {
            "backend": backend.name,
            "path": path,
            "circle": doc.get("circle") or "default",
            "runtime_session_id": session_id,
            "work_id": job_id,
            "recorded_at": iso(now),
        }
    provenance = {"runtime_binding": binding} if binding else None
    if outcome == "cancelled":
        _end_cancelled(r, job_id, attempt_id, code)
    elif outcome == "deadline":
        error = {"reason": "deadline_exceeded"}
        _finish(
            r,
            job_id,
            attempt_id,
            state=JobState.FAILED,
            reason="deadline_exceeded",
            exit_code=code,
            error=error,
            provenance=provenance,
        )
    elif outcome == "exited" and code == 0:
        _finish(
            r,
            job_id,
            attempt_id,
            state=JobState.COMPLETED,
            reason="completed",
            exit_code=code,
            result_summary=backend.result(stdout),
            provenance=provenance,
        )
    elif outcome == "exited":
        error = {"reason": "exit_code", "exit_code": code, "message": stderr.strip()[-2000:]}
        _finish(
            r,
            job_id,
            attempt_id,
            state=JobState.FAILED,
            reason="exit_code",
            exit_code=code,
            error=error,
            provenance=provenance,
        )
    if binding and doc.get("source_kind") == "calendar" and doc.get("source_id"):
        templates.record_binding(r, doc["source_id"], binding, now)
    if doc.get("source_kind") == "calendar" and doc.get("source_id"):
        released = templates.release_buffered(r, doc["source_id"], now)
        if released:
            # The buffered child starts as soon as this one ended, not at the next tick.
            jobs.postpone(r, released, now + dispatch.RESEND_AFTER_MS)
            send_fire(released, target_machine(doc), dispatch.fire_key(released))


def _finish(r: redis.Redis, job_id: str, attempt_id: str, **kw: Any) -> None:
    try:
        jobs.finish_attempt(r, job_id, attempt_id, now_ms=clock.now_ms(), **kw)
    except jobs.Refused as refused:
        # The job's own terminal PATCH (or the lease sweep) got there first; that report wins.
        log.info("outcome of %s not recorded: %s", attempt_id, refused.reason)


def _end_cancelled(r: redis.Redis, job_id: str, attempt_id: str, code: int | None) -> None:
    reason = (jobs.get(r, job_id) or {}).get("cancellation_reason") or "cancel_requested"
    _finish(r, job_id, attempt_id, state=JobState.CANCELLED, reason=reason, exit_code=code)


@app.task(name=names.REAP)
def reap(attempt_id: str) -> list[int]:
    """Kill what is left of an attempt on this host (routed to `fires.<machine>`).
    Idempotent: a second run finds nothing to kill."""
    killed = executors.reap(attempt_id)
    executor_records.forget(redis_client(), machine_name(), attempt_id)
    if killed:
        log.warning("reaped %d leftover process(es) of %s", len(killed), attempt_id)
    return killed


def reap_orphans(r: redis.Redis) -> list[str]:
    """At worker start: executors this host started whose attempt is no longer running under
    a live lease belong to a dead worker; kill them."""
    now = clock.now_ms()
    reaped = []
    for attempt_id, record in executor_records.on_machine(r, machine_name()).items():
        doc = jobs.get(r, record.get("job_id", "")) or {}
        lease = parse_ms(doc.get("runner", {}).get("lease_until"))
        current = doc.get("runner", {}).get("current_attempt_id") == attempt_id
        if not current or doc.get("state") in JOB_TERMINAL or lease is None or lease < now:
            executors.reap(attempt_id)
            executor_records.forget(r, machine_name(), attempt_id)
            reaped.append(attempt_id)
    return reaped


@signals.worker_ready.connect
def _on_worker_ready(**_: Any) -> None:
    try:
        reaped = reap_orphans(redis_client())
        if reaped:
            log.warning("reaped executors of dead workers: %s", ", ".join(reaped))
    except redis.exceptions.RedisError:
        log.warning("could not reap orphan executors: store unavailable")


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _on_shutdown(**_: Any) -> None:
    """A worker stopping on purpose stops its executors (nothing outlives its fire) and ends
    their attempts `unavailable` / `runner_interrupted`."""
    global _shutting_down
    _shutting_down = True
    grace = get_settings().job_kill_grace_s
    with _lock:
        running = list(_supervised.items())
    r = redis_client()
    for attempt_id, (job_id, executor) in running:
        executor.stop(grace)
        _unavailable(r, job_id, attempt_id, "runner_interrupted")
