# What dispatchyard uses of celery-redbeat 2.x, which ships no types (workers/app.py,
# workers/beat.py). Written from redbeat/schedulers.py; only the names used here.
from typing import Any, Final

import redis
from celery import Celery
from celery.beat import ScheduleEntry, Scheduler
from celery.utils.dispatch import Signal
from redis.lock import Lock

REDBEAT_REDIS_KEY: Final[str]
beat_init: Signal

class RetryingConnection:
    """RedBeat's client when `redbeat_redis_options` sets `retry_period`: every attribute of
    the wrapped Redis client, retried."""

    def __getattr__(self, item: str) -> Any: ...

def get_redis(app: Celery | None = None) -> redis.Redis | RetryingConnection: ...
def acquire_distributed_beat_lock(sender: Any = None, **kwargs: Any) -> None: ...

class RedBeatScheduler(Scheduler):
    lock: Lock | None
    lock_key: str | None
    lock_timeout: int
    # Always set: Celery's Scheduler falls back to beat_max_loop_interval, then its default.
    max_interval: int
    def __init__(
        self,
        app: Celery,
        lock_key: str | None = None,
        lock_timeout: int | None = None,
        **kwargs: Any,
    ) -> None: ...
    def maybe_due(self, entry: ScheduleEntry, **kwargs: Any) -> float: ...
    @property
    def _maybe_due_kwargs(self) -> dict[str, Any]: ...
