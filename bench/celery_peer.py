"""The peer of the fire-overhead benchmark: a bare Celery app with one task that records when
it started, on the same broker (`celery -A bench.celery_peer worker`)."""

from __future__ import annotations

import time

from celery import Celery

from dispatchyard.clients import celery_broker, redis_client
from dispatchyard.settings import get_settings

broker_url, broker_options = celery_broker(get_settings().redis_url)
app = Celery("bare", broker=broker_url)
app.conf.update(
    broker_transport_options=broker_options,
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    task_acks_late=True,
    task_default_queue="bare",
)
_r = redis_client(get_settings())


@app.task(name="bare.started")
def started(token: str) -> None:
    _r.set(f"bench:bare:{token}", time.time_ns())
