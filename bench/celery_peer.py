"""The peer of the fire-overhead benchmark, as operations.md names it: a bare Celery task's
enqueue -> start plus a fork/exec of `true`. A bare Celery app with one task, on the same
broker (`celery -A bench.celery_peer worker`), that records when it started and how long a
fork/exec of `true` then took."""

from __future__ import annotations

import subprocess
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
    start = time.time_ns()
    subprocess.run(["true"], check=True)
    _r.set(f"bench:bare:{token}", f"{start} {time.time_ns() - start}")
