"""The liveness tick beat sends every few seconds."""

from __future__ import annotations

from state import beat as beat_state
from state import clock
from tasks.store import redis_client
from workers.app import app


@app.task(name="beat.tick")
def tick() -> None:
    """Idempotent: it only records the latest time a tick ran."""
    beat_state.record_tick(redis_client(), clock.now_ms())
