"""A `per_fire` job's fire: start the backend's command in the job's path as its own process
group, resuming the previous fire's runtime session when the job asks for continuity, record
the executor (before it starts), and hand it to this worker process's supervisor."""

from __future__ import annotations

import os
from pathlib import Path

import redis

from dispatchyard.settings import get_settings
from dispatchyard.state import clock, jobs, templates
from dispatchyard.state import executors as executor_records
from dispatchyard.state.errors import StateError
from dispatchyard.state.executors import ExecutorRecord
from dispatchyard.state.job_shape import Continuity, ExecutorInfo, JobDoc
from workers import attempts, executors
from workers.backends import Backend
from workers.supervisor import Fire, Supervisor


def start(r: redis.Redis, doc: JobDoc, attempt_id: str, supervisor: Supervisor) -> str:
    """Start the attempt's executor and have `supervisor` watch it; an attempt that cannot
    start ends `unavailable` with the reason. Returns what happened."""
    s = get_settings()
    job_id = doc["job_id"]
    execution = doc["execution"]
    target = execution.get("target") or {}
    path, name = target.get("path"), target.get("backend")
    if not path or not name:
        return attempts.unavailable(r, job_id, attempt_id, "missing_target")
    spec = s.backends.get(name)  # the settings drop a backend given as null
    if spec is None:
        return attempts.unavailable(r, job_id, attempt_id, "invalid_backend")
    if not os.path.isdir(path):
        return attempts.unavailable(r, job_id, attempt_id, "path_not_found")
    backend = Backend.from_settings(name, spec)
    prompt = (execution.get("prompt") or {}).get("body") or doc.get("title") or ""
    session_id, continuity = _continuity(r, doc, backend, path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHYARD_")}
    env.update(
        DISPATCHYARD_JOB_ID=job_id,
        DISPATCHYARD_ATTEMPT_ID=attempt_id,
        DISPATCHYARD_URL=s.platform_url,
    )
    log_dir = Path(s.data_dir) / "executors" / job_id / attempt_id
    # The record comes before the process: a worker killed right after the spawn leaves a
    # record for the lease sweep and the next worker to reap by, never a process without one.
    machine = s.machine_name()
    record: ExecutorRecord = {"job_id": job_id, "pid": 0, "started_ms": clock.now_ms()}
    executor_records.remember(r, machine, attempt_id, record)
    try:
        executor = executors.spawn(backend.argv(prompt, path, session_id), path, env, log_dir)
    except OSError as e:
        executor_records.forget(r, machine, attempt_id)
        return attempts.unavailable(r, job_id, attempt_id, f"spawn_failed: {type(e).__name__}")
    record["pid"] = executor.pid
    executor_records.remember(r, machine, attempt_id, record)
    info: ExecutorInfo = {
        "pid": executor.pid,
        "pgid": executor.pid,
        "host": machine,
        "argv0": backend.name,
    }
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
    except StateError:
        # Cancelled (or superseded) between acquire and start: the process must not outlive it.
        executor.stop(s.job_kill_grace_s)
        executor_records.forget(r, machine, attempt_id)
        attempts.cancelled(r, job_id, attempt_id, executor.proc.returncode)
        return "cancelled_before_start"
    supervisor.supervise(Fire(doc, attempt_id, executor, backend, path))
    return "executor_started"


def _continuity(
    r: redis.Redis, doc: JobDoc, backend: Backend, path: str
) -> tuple[str | None, Continuity]:
    """Whether this fire resumes the previous fire's runtime session, and why (or why not)."""
    mode = (doc.get("execution") or {}).get("continuity") or "fresh"
    if mode == "fresh":
        return None, {"mode": "fresh", "resumed": False, "reason": "continuity_fresh"}

    def fresh(reason: str) -> tuple[None, Continuity]:
        return None, {"mode": "resume", "resumed": False, "reason": reason}

    template_id = doc.get("source_id")
    if doc.get("source_kind") != "calendar" or not template_id:
        return fresh("no_previous_fire")
    template = templates.get(r, template_id)
    binding = (template.get("provenance") or {}).get("runtime_binding") if template else None
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
