"""Task and queue names: the one place both sides read them. The shim enqueues by these names
(it never imports task code), and the task modules register under them. Importing this module
imports nothing else.

Queues: every worker node takes the shared queue and its own machine's fire queue, so a job
naming a machine runs where its `path` exists. Each queue has its own direct exchange and
routing key, both the queue's name.
"""

from __future__ import annotations

DEFAULT_QUEUE = "dispatchyard"

# Tasks, by module.
FIRE = "jobs.fire"
REAP = "jobs.reap"
SCHEDULER_TICK = "scheduler.tick"
MATERIALIZE = "scheduler.materialize"
FIRE_SCHEDULES = "schedules.fire"
BEAT_TICK = "liveness.beat_tick"
SWEEP_OFFLINE_HOSTS = "sweeps.offline_hosts"
SWEEP_STALE_MUTATIONS = "sweeps.stale_mutations"
SWEEP_JOB_LEASES = "sweeps.job_leases"
SWEEP_JOB_TIMES = "sweeps.job_times"
SWEEP_RETENTION = "retention.sweep"

TASK_MODULES = [
    "tasks.liveness",
    "tasks.sweeps",
    "tasks.jobs",
    "tasks.tick",
    "tasks.schedules",
    "tasks.retention",
]


def fires_queue(machine: str) -> str:
    """The queue only `machine`'s worker nodes take."""
    return f"fires.{machine}"


def queue_for(machine: str | None) -> str:
    """Where a fire goes: its machine's queue when it names one, else the shared queue."""
    return fires_queue(machine) if machine else DEFAULT_QUEUE
