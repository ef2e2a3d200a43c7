"""The Celery app and the settings that keep tasks from being lost or run twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar, cast

from celery import Celery, Task
from kombu import Exchange, Queue
from redbeat.schedulers import REDBEAT_REDIS_KEY

import beat_schedule
from dispatchyard.clients import celery_broker, redbeat_config, redis_client
from dispatchyard.redis_urls import sentinel_url
from dispatchyard.settings import get_settings
from dispatchyard.state import clock, keys
from tasks import names
from workers import broker_fixes
from workers.liveness import Liveness

P = ParamSpec("P")
R = TypeVar("R")

settings = get_settings()
# A `sentinel://` setting becomes kombu's Sentinel form and RedBeat's (settings.py); Celery's
# result backend stays off (`result_backend=None`): nothing here reads task results.
broker_url, broker_sentinel_options = celery_broker(settings.redis_url)


def _queue(name: str) -> Queue:
    # What Celery makes for a queue it has not declared (as the shim does when it sends to
    # another machine's queue): its own direct exchange and key, so a message reaches exactly
    # one queue. With a shared exchange and key, every bound queue would get a copy.
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


clock.configure(settings.clock_rate, settings.clock_anchor_ms)
broker_fixes.apply()
app = Celery("dispatchyard", include=names.TASK_MODULES)
app.conf.update(
    broker_url=broker_url,
    broker_connection_retry_on_startup=True,
    broker_transport_options={
        # Longer than any task: a task still running when this expires is redelivered.
        "visibility_timeout": 3600,
        "socket_keepalive": True,
        # The shared queue first, then the machine's fires (task_queues' order): a burst of
        # due templates is materialized (and its children's fires sent) before those fires
        # run, instead of every fire delaying the next materialization.
        "queue_order_strategy": "priority",
        **broker_sentinel_options,
    },
    task_ignore_result=True,
    result_backend=None,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue=names.DEFAULT_QUEUE,
    # Every worker takes the shared queue and its own machine's fire queue.
    task_queues=[
        _queue(names.DEFAULT_QUEUE),
        _queue(names.fires_queue(settings.machine_name())),
    ],
    task_serializer="json",
    accept_content=["json"],
    timezone="UTC",
    enable_utc=True,
    worker_send_task_events=True,
    task_send_sent_event=True,
    beat_scheduler="workers.beat:OutageTolerantScheduler",
    **redbeat_config(settings.redis_url),
    redbeat_key_prefix="redbeat:",
    redbeat_lock_key=keys.BEAT_LOCK,  # /metrics reads it: dispatchyard_beat_leader
    # A second beat waits on this lock; if the leader dies the lock expires and it takes over.
    redbeat_lock_timeout=settings.beat_lock_timeout_s,
    beat_max_loop_interval=1,
    beat_schedule=beat_schedule.entries(settings),
)
if sentinel_url(settings.redis_url) is not None:
    # RedBeat's own Sentinel client (the options above) is built anew on every use, a new
    # master connection each time, with no connect timeout; RedBeat takes a client already on
    # the app instead: the Sentinel-managed one every process builds (clients.redis_client).
    setattr(app, REDBEAT_REDIS_KEY, redis_client(settings))
app.steps["worker"].add(Liveness)


def task(name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """`app.task(name=name)` that keeps the function's signature: celery-types types the
    keyword form as `Task[Any, Any]`, which would leave calls, `delay` and results unchecked."""

    def register(fun: Callable[P, R]) -> Task[P, R]:
        return cast("Task[P, R]", app.task(name=name)(fun))

    return register
