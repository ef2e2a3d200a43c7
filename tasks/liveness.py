"""The liveness tick beat sends every few seconds: proof for /health that beat runs and at
least one worker node takes tasks."""

from __future__ import annotations

from dispatchyard.state import clock, liveness
from tasks import names
from tasks.connection import redis_client
from workers.app import task


@task(names.BEAT_TICK)
def beat_tick() -> None:
    """Idempotent: it only records the latest time a tick ran."""
    liveness.beat_ticked(redis_client(), clock.now_ms())
