"""Fire supervision: one Supervisor per worker process watches each executor that process
started, in a daemon thread of its own, until the run ends.

The fire task returns once the executor has started, so a long agent run holds no Celery pool
slot the scheduler tick and the sweeps need. The supervisor renews the attempt's lease every
third of `job_lease_s`; stops the executor's process group (SIGTERM, then SIGKILL after
`job_kill_grace_s`) on a cancel request, at `deadline_at`, or when the job ended or moved on by
other means (its own terminal PATCH, the lease sweep); and records the outcome. A worker
stopping on purpose calls `shutdown`, which stops every executor and ends its attempt
`unavailable` / `runner_interrupted`. If the worker dies instead, the lease runs out and the
lease sweep ends the attempt and has a worker of that host reap its processes (sent again once
a lease while the executor record stays, in case the worker that took it died too).
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import redis

from dispatchyard.settings import Settings, get_settings
from dispatchyard.state import clock, jobs
from dispatchyard.state import executors as executor_records
from dispatchyard.state.clock import iso, parse_ms
from dispatchyard.state.errors import StateError
from dispatchyard.state.job_shape import ErrorInfo, JobDoc, JobProvenance, RuntimeBinding
from dispatchyard.state.models import JOB_TERMINAL, JobState
from workers import attempts
from workers.backends import Backend
from workers.executors import Executor

log = logging.getLogger(__name__)

POLL_S = 0.1  # how often a supervisor looks at its process and the job's cancel flag


class Outcome(StrEnum):
    """How a supervised run ended, as its supervisor saw it."""

    EXITED = "exited"  # the executor ended by itself; its exit code decides the job's state
    SUPERSEDED = "superseded"  # the job ended or moved to another attempt by other means
    CANCELLED = "cancelled"  # a cancel was requested
    DEADLINE = "deadline"  # the job's deadline_at passed


@dataclass(frozen=True)
class Fire:
    """One supervised run: the job as acquired, its attempt, the executor process, the backend
    that reads its output, and the path it runs in."""

    doc: JobDoc
    attempt_id: str
    executor: Executor
    backend: Backend
    path: str

    @property
    def job_id(self) -> str:
        return self.doc["job_id"]


# Called after an outcome is recorded: (client, fire, runtime binding or None, now in ms).
OnEnded = Callable[[redis.Redis, Fire, RuntimeBinding | None, int], None]


class Supervisor:
    """The fires one worker process supervises, by attempt id."""

    def __init__(self, redis_client: Callable[[], redis.Redis], on_ended: OnEnded) -> None:
        self._redis = redis_client
        self._on_ended = on_ended
        self._fires: dict[str, Fire] = {}
        self._lock = threading.Lock()
        self._shutting_down = False

    def supervise(self, fire: Fire) -> None:
        """Watch `fire` from a daemon thread of this process until its run ends and its
        outcome is recorded."""
        with self._lock:
            self._fires[fire.attempt_id] = fire
        threading.Thread(
            target=self._run, args=(fire,), name=f"supervise-{fire.attempt_id}", daemon=True
        ).start()

    def shutdown(self) -> None:
        """Stop every supervised executor and end its attempt `unavailable` /
        `runner_interrupted`; outcomes seen from here on are not recorded."""
        self._shutting_down = True
        grace = get_settings().job_kill_grace_s
        with self._lock:
            running = list(self._fires.values())
        r = self._redis()
        for fire in running:
            fire.executor.stop(grace)
            attempts.unavailable(r, fire.job_id, fire.attempt_id, "runner_interrupted")

    def _run(self, fire: Fire) -> None:
        s = get_settings()
        r = self._redis()
        try:
            outcome = self._watch(r, s, fire)
            fire.executor.kill_leftovers()
            self._record(r, fire, outcome)
        except Exception:
            log.exception("supervising %s of %s failed", fire.attempt_id, fire.job_id)
            fire.executor.stop(s.job_kill_grace_s)
        finally:
            with self._lock:
                self._fires.pop(fire.attempt_id, None)
            with contextlib.suppress(redis.exceptions.RedisError):
                executor_records.forget(r, s.machine_name(), fire.attempt_id)

    def _watch(self, r: redis.Redis, s: Settings, fire: Fire) -> Outcome:
        """Wait for the executor, renewing the lease; stop it on cancel, deadline, or when the
        job ended by other means."""
        lease_ms = int(s.job_lease_s * 1000)
        renew_every = lease_ms // 3
        next_renew = clock.now_ms() + renew_every
        deadline = parse_ms(fire.doc.get("deadline_at"))
        while True:
            try:
                fire.executor.proc.wait(timeout=POLL_S)
                return Outcome.EXITED
            except subprocess.TimeoutExpired:
                pass
            now = clock.now_ms()
            outcome = Outcome.EXITED
            try:
                flags = jobs.flags(r, fire.job_id)
                if flags.get("attempt") != fire.attempt_id or flags.get("state") in JOB_TERMINAL:
                    outcome = Outcome.SUPERSEDED
                elif flags.get("cancel") == "1":
                    outcome = Outcome.CANCELLED
                elif deadline is not None and now >= deadline:
                    outcome = Outcome.DEADLINE
                elif now >= next_renew:
                    jobs.renew_lease(r, fire.job_id, fire.attempt_id, now, lease_ms)
                    next_renew = now + renew_every
            except StateError:
                outcome = Outcome.SUPERSEDED
            except redis.exceptions.RedisError:
                continue  # the store is away: keep the agent running, look again shortly
            if outcome != Outcome.EXITED:
                fire.executor.stop(s.job_kill_grace_s)
                return outcome

    def _record(self, r: redis.Redis, fire: Fire, outcome: Outcome) -> None:
        """End the attempt as `outcome` and the exit code say (a superseded one was ended by
        whatever superseded it), then hand the runtime binding to `on_ended`."""
        if self._shutting_down:
            return  # the shutdown path ends this attempt as runner_interrupted
        job_id, attempt_id, doc = fire.job_id, fire.attempt_id, fire.doc
        now = clock.now_ms()
        code = fire.executor.proc.returncode
        stdout, stderr = fire.executor.output()
        session_id = fire.backend.session_id(stdout)
        binding: RuntimeBinding | None = None
        if session_id:
            binding = {
                "backend": fire.backend.name,
                "path": fire.path,
                "circle": doc.get("circle") or "default",
                "runtime_session_id": session_id,
                "work_id": job_id,
                "recorded_at": iso(now),
            }
        provenance: JobProvenance | None = {"runtime_binding": binding} if binding else None
        if outcome == Outcome.CANCELLED:
            attempts.cancelled(r, job_id, attempt_id, code)
        elif outcome == Outcome.DEADLINE:
            attempts.finish(
                r,
                job_id,
                attempt_id,
                state=JobState.FAILED,
                reason="deadline_exceeded",
                exit_code=code,
                error={"reason": "deadline_exceeded"},
                provenance=provenance,
            )
        elif outcome == Outcome.EXITED and code == 0:
            attempts.finish(
                r,
                job_id,
                attempt_id,
                state=JobState.COMPLETED,
                reason="completed",
                exit_code=code,
                result_summary=fire.backend.result(stdout),
                provenance=provenance,
            )
        elif outcome == Outcome.EXITED:
            error: ErrorInfo = {
                "reason": "exit_code",
                "exit_code": code,
                "message": stderr.strip()[-2000:],
            }
            attempts.finish(
                r,
                job_id,
                attempt_id,
                state=JobState.FAILED,
                reason="exit_code",
                exit_code=code,
                error=error,
                provenance=provenance,
            )
        self._on_ended(r, fire, binding, now)
