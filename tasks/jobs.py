"""Job fires: acquire an attempt, start its executor (per_fire) or deliver it (persistent),
and reap what a dead worker left behind.

A fire task is idempotent by its fire key: acquiring records the key in the job, so a
redelivered message, a second beat or a resend by the scheduler starts no second attempt.
The task returns once the executor has started; this worker process's Supervisor
(workers/supervisor.py) watches it from a thread to the end, so long agent runs do not hold
Celery pool slots that the scheduler tick and the sweeps need.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import signals

from dispatchyard.settings import get_settings
from dispatchyard.state import clock, dispatch, jobs, templates
from dispatchyard.state import executors as executor_records
from dispatchyard.state.clock import parse_ms
from dispatchyard.state.errors import StateError
from dispatchyard.state.job_shape import RuntimeBinding, target_machine
from dispatchyard.state.models import JOB_TERMINAL, JobState
from tasks import names, peer_delivery, per_fire
from tasks.connection import redis_client
from workers import attempts, executors
from workers.app import task
from workers.supervisor import Fire, Supervisor

log = logging.getLogger(__name__)


def machine_name() -> str:
    return get_settings().machine_name()


def send_fire(job_id: str, machine: str | None, fire_key: str, why: str = "due") -> None:
    """Queue a fire: on the job's machine's own queue when it names one."""
    fire.apply_async((job_id, fire_key, why), queue=names.queue_for(machine))


def _after_run(r: redis.Redis, ended: Fire, binding: RuntimeBinding | None, now_ms: int) -> None:
    """A calendar child's run ended: its runtime binding goes on its template, and a child
    buffered behind it fires now rather than at the next tick."""
    doc = ended.doc
    template_id = doc.get("source_id")
    if doc.get("source_kind") != "calendar" or not template_id:
        return
    if binding:
        templates.record_binding(r, template_id, binding, now_ms)
    released = templates.release_buffered(r, template_id, now_ms)
    if released:
        jobs.postpone(r, released, now_ms + dispatch.RESEND_AFTER_MS)
        send_fire(released, target_machine(doc), dispatch.fire_key(released))


# The fires this worker process supervises (a prefork child gets its own, empty, at fork).
supervisor = Supervisor(redis_client, on_ended=_after_run)


@task(names.FIRE)
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
    except StateError as refused:
        log.info("fire %s of %s refused: %s", fire_key, job_id, refused.message)
        return refused.message
    attempt_id = doc["runner"]["current_attempt_id"]  # the attempt acquire started
    if doc["state"] != JobState.DISPATCHING or attempt_id is None:
        return doc["state"]  # expired or past its deadline: ended at acquire
    execution = doc.get("execution") or {}
    target = execution.get("target") or {}
    scope = execution.get("process_scope")
    if scope == "per_fire":
        return per_fire.start(r, doc, attempt_id, supervisor)
    if scope == "persistent" or doc.get("assigned_peer_id") or target.get("assigned_peer_id"):
        return peer_delivery.deliver(r, doc, attempt_id)
    return attempts.unavailable(r, job_id, attempt_id, "missing_target")


@task(names.REAP)
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
        doc = jobs.get(r, record.get("job_id", ""))
        runner = doc["runner"] if doc else None
        lease = parse_ms(runner.get("lease_until")) if runner else None
        current = runner is not None and runner.get("current_attempt_id") == attempt_id
        ended = doc is not None and doc.get("state") in JOB_TERMINAL
        if not current or ended or lease is None or lease < now:
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
    supervisor.shutdown()
