"""The static periodic entries beat sends, read top to bottom.

Recurring job templates are not entries here: their due times live in a Redis sorted set that
the scheduler tick reads every `template_tick_s`.
"""

from __future__ import annotations

from typing import Protocol, TypedDict

from tasks import names


class Intervals(Protocol):
    """The settings the entries read (dispatchyard.settings.Settings, which this module does
    not import: beat_schedule depends on task names only)."""

    @property
    def sweep_interval_s(self) -> float: ...

    @property
    def template_tick_s(self) -> float: ...


class Options(TypedDict):
    expires: float  # a tick not taken by then is dropped: the next one comes anyway


class Entry(TypedDict):
    """One of celery's `beat_schedule` entries."""

    task: str
    schedule: float  # seconds between sends
    options: Options


def entries(settings: Intervals) -> dict[str, Entry]:
    def sweep(task: str) -> Entry:
        every = settings.sweep_interval_s
        return {"task": task, "schedule": every, "options": {"expires": every}}

    return {
        # Proves beat and at least one worker node are alive; /health reports it.
        "beat-tick": {"task": names.BEAT_TICK, "schedule": 5.0, "options": {"expires": 5.0}},
        # Due jobs, due recurring templates, buffered children: every template_tick_s.
        "scheduler-tick": {
            "task": names.SCHEDULER_TICK,
            "schedule": settings.template_tick_s,
            "options": {"expires": max(2.0, settings.template_tick_s * 2)},
        },
        # Attempts whose worker died (lease ran out) -> runner_interrupted, process reaped.
        "sweep-job-leases": sweep(names.SWEEP_JOB_LEASES),
        # expires_at / deadline_at enforcement.
        "sweep-job-times": sweep(names.SWEEP_JOB_TIMES),
        # Silent daemon hosts -> offline, their claimed sessions back to the queue.
        "sweep-offline-hosts": sweep(names.SWEEP_OFFLINE_HOSTS),
        # Mutations delivered max times with no report -> failed/undelivered.
        "sweep-stale-mutations": sweep(names.SWEEP_STALE_MUTATIONS),
        # Records final for longer than their retention -> deleted, a batch per kind a run.
        "sweep-retention": sweep(names.SWEEP_RETENTION),
    }
