"""The static periodic entries beat sends, read top to bottom.

Recurring job templates are not entries here: their due times live in a Redis sorted set that
the scheduler tick reads every `template_tick_s`.
"""

from __future__ import annotations

from typing import Any

from tasks import names


def entries(settings: Any) -> dict[str, dict[str, Any]]:
    def sweep(task: str) -> dict[str, Any]:
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
    }
