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
from dispatchyard.state import clock, dispatch, jobs, liveness, templates
from dispatchyard.state import executors as executor_records
from dispatchyard.state.clock import parse_ms
from dispatchyard.state.errors import StateError
from dispatchyard.state.executors import ExecutorRecord
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
    """Kill what is left of an attempt on this host (routed to `fires.<machine>`), then drop
    its executor record. Idempotent: a second run finds nothing to kill (the lease sweep sends
    it again while the record stays: see `resend_reaps`)."""
    killed = executors.reap(attempt_id)
    executor_records.forget(redis_client(), machine_name(), attempt_id)
    if killed:
        log.warning("reaped %d leftover process(es) of %s", len(killed), attempt_id)
    return killed


def _still_running(r: redis.Redis, attempt_id: str, record: ExecutorRecord, now_ms: int) -> bool:
    """Whether an executor's attempt is still its job's current one, not ended, under a live
    lease: only then may its processes live."""
    doc = jobs.get(r, record.get("job_id", ""))
    if doc is None or doc.get("state") in JOB_TERMINAL:
        return False
    runner = doc["runner"]
    lease = parse_ms(runner.get("lease_until"))
    return runner.get("current_attempt_id") == attempt_id and lease is not None and lease >= now_ms


def reap_orphans(r: redis.Redis) -> list[str]:
    """At worker start: executors this host started whose attempt is no longer running under
    a live lease belong to a dead worker; kill them."""
    now = clock.now_ms()
    reaped = []
    for attempt_id, record in executor_records.on_machine(r, machine_name()).items():
        if not _still_running(r, attempt_id, record, now):
            executors.reap(attempt_id)
            executor_records.forget(r, machine_name(), attempt_id)
            reaped.append(attempt_id)
    return reaped


def send_reap(machine: str, attempt_id: str) -> None:
    """Have a worker of `machine` kill what is left of `attempt_id` there."""
    reap.apply_async((attempt_id,), queue=names.fires_queue(machine))


def resend_reaps(r: redis.Redis, now_ms: int) -> list[str]:
    """The lease sweep's second half: a record whose attempt no longer runs still there a lease
    after a sweep first saw it means its reap was never run (the worker holding the reap, or
    the fire, was killed: an unacknowledged task returns only after the broker's visibility
    timeout). Send the reap again, once a lease, to a machine with a live worker node (a worker
    starting on a dead machine reaps its records itself). Idempotent: a reap run twice finds
    nothing the second time. The attempts whose reap was sent again."""
    every_ms = int(get_settings().job_lease_s * 1000)
    resent = []
    for machine in executor_records.machines(r):
        if not liveness.machine_alive(r, machine, now_ms):
            continue
        for attempt_id, record in executor_records.on_machine(r, machine).items():
            if _still_running(r, attempt_id, record, now_ms):
                continue
            if executor_records.reap_due(r, machine, attempt_id, now_ms, every_ms):
                send_reap(machine, attempt_id)
                log.warning("reap of %s on %s sent again", attempt_id, machine)
                resent.append(attempt_id)
    return resent


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
