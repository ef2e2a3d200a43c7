"""Beat liveness: the last time the periodic tick ran."""

from __future__ import annotations

import redis

from state import keys


def record_tick(r: redis.Redis, now_ms: int) -> None:
    r.set(keys.BEAT_LAST_TICK, now_ms)


def last_tick(r: redis.Redis) -> int | None:
    value = r.get(keys.BEAT_LAST_TICK)
    return int(value) if value else None
