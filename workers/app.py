"""The Celery app and the settings that keep tasks from being lost or run twice."""

from __future__ import annotations

import socket

from celery import Celery
from kombu import Exchange, Queue

import beat_schedule
from settings import get_settings
from state import clock

settings = get_settings()

DEFAULT_QUEUE = "dispatchyard"


def machine_name() -> str:
    """This host's name for its own fire queue `fires.<machine>`."""
    return settings.machine or socket.gethostname()


def fires_queue(machine: str) -> str:
    return f"fires.{machine}"


def _queue(name: str) -> Queue:
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


clock.configure(settings.clock_rate, settings.clock_anchor_ms)
app = Celery("dispatchyard", include=beat_schedule.TASK_MODULES)
app.conf.update(
    broker_url=settings.redis_url,
    broker_connection_retry_on_startup=True,
    broker_transport_options={
        # Longer than any task: a task still running when this expires is redelivered.
        "visibility_timeout": 3600,
        "socket_keepalive": True,
    },
    task_ignore_result=True,
    result_backend=None,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue=DEFAULT_QUEUE,
    # Every worker takes the shared queue and its own host's fire queue. Each queue has its
    # own direct exchange and routing key (what Celery makes for a queue it has not declared,
    # as the shim does when it sends to another host's queue), so a message reaches exactly
    # one queue: with a shared exchange and key, every bound queue would get a copy.
    task_queues=[_queue(DEFAULT_QUEUE), _queue(fires_queue(machine_name()))],
    task_serializer="json",
    accept_content=["json"],
    timezone="UTC",
    enable_utc=True,
    worker_send_task_events=True,
    task_send_sent_event=True,
    beat_scheduler="redbeat.RedBeatScheduler",
    redbeat_redis_url=settings.redis_url,
    redbeat_key_prefix="redbeat:",
    # A second beat waits on this lock; if the leader dies the lock expires and it takes over.
    redbeat_lock_timeout=settings.beat_lock_timeout_s,
    beat_max_loop_interval=1,
    beat_schedule=beat_schedule.entries(settings),
)


def _add_steps() -> None:
    from workers.liveness import Liveness

    app.steps["worker"].add(Liveness)


_add_steps()
