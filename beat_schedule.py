"""The static periodic entries beat sends, read top to bottom.

Recurring job templates and scheduled messages are not entries here: their due times live in
Redis sorted sets that the `templates.tick` task reads every second.
"""

from __future__ import annotations

from typing import Any

TASK_MODULES = ["tasks.beat", "tasks.sweeps"]


def entries(settings: Any) -> dict[str, dict[str, Any]]:
    return {
        # Proves beat and at least one worker are alive; /health reports it.
        "beat-tick": {"task": "beat.tick", "schedule": 5.0, "options": {"expires": 5.0}},
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
