"""The peer of the fire-overhead benchmark: a bare Celery app with one task that records when
it started, on the same broker (`celery -A bench.celery_peer worker`)."""

from __future__ import annotations

import time

import redis
from celery import Celery

from settings import get_settings

app = Celery("bare", broker=get_settings().redis_url)
app.conf.update(
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    task_acks_late=True,
    task_default_queue="bare",
)
_r = redis.Redis.from_url(get_settings().redis_url)


@app.task(name="bare.started")
def started(token: str) -> None:
    _r.set(f"bench:bare:{token}", time.time_ns())
