"""The static periodic entries beat sends, read top to bottom.

Recurring job templates and scheduled messages are not entries here: their due times live in
Redis sorted sets that the `templates.tick` task reads every second.
"""

from __future__ import annotations

from typing import Any

TASK_MODULES = ["tasks.beat", "tasks.sweeps", "tasks.jobs", "tasks.scheduler"]


def entries(settings: Any) -> dict[str, dict[str, Any]]:
    return {
        # Proves beat and at least one worker are alive; /health reports it.
        "beat-tick": {"task": "beat.tick", "schedule": 5.0, "options": {"expires": 5.0}},
        # Due jobs, due recurring templates, buffered children: every template_tick_s.
        "scheduler-tick": {
            "task": "scheduler.tick",
            "schedule": settings.template_tick_s,
            "options": {"expires": max(2.0, settings.template_tick_s * 2)},
        },
        # Attempts whose worker died (lease ran out) -> runner_interrupted, process reaped.
        "sweep-job-leases": {
            "task": "sweeps.job_leases",
            "schedule": settings.sweep_interval_s,
            "options": {"expires": settings.sweep_interval_s},
        },
        # expires_at / deadline_at enforcement.
        "sweep-job-times": {
            "task": "sweeps.job_times",
            "schedule": settings.sweep_interval_s,
            "options": {"expires": settings.sweep_interval_s},
        },
        # Silent hosts -> offline, their claimed sessions back to the queue.
        "sweep-offline-workers": {
            "task": "sweeps.offline_workers",
            "schedule": settings.sweep_interval_s,
            "options": {"expires": settings.sweep_interval_s},
        },
        # Mutations delivered max times with no report -> failed/undelivered.
        "sweep-stale-mutations": {
            "task": "sweeps.stale_mutations",
            "schedule": settings.sweep_interval_s,
            "options": {"expires": settings.sweep_interval_s},
        },
    }
