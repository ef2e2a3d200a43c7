"""A worker bootstep that says, every few seconds, that this worker node and its machine are
alive (state/liveness.py): the scheduler only sends a fire to `fires.<machine>` when that
machine has a live node, and /health counts online nodes."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import redis
from celery import bootsteps
from kombu.asynchronous.timer import Entry, Timer

from dispatchyard.clients import redis_client
from dispatchyard.settings import get_settings
from dispatchyard.state import clock, liveness

log = logging.getLogger(__name__)
INTERVAL_S = 5.0


class Worker(Protocol):
    """What this step uses of Celery's WorkController (celery-types' stub of it has no
    `hostname`, and types `timer` as the bootstep rather than kombu's Timer it holds)."""

    hostname: str
    timer: Timer


class Liveness(bootsteps.StartStopStep):
    requires = ("celery.worker.components:Timer",)

    def __init__(self, worker: Worker, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Entry | None = None

    def start(self, worker: Worker) -> None:
        settings = get_settings()
        self.r = redis_client(settings)
        self.machine = settings.machine_name()
        self.say_alive(worker)
        self.tref = worker.timer.call_repeatedly(INTERVAL_S, self.say_alive, (worker,), priority=10)

    def say_alive(self, worker: Worker) -> None:
        try:
            liveness.node_seen(self.r, self.machine, worker.hostname, clock.now_ms())
        except redis.exceptions.RedisError:
            log.debug("liveness not recorded: store unavailable")

    def stop(self, worker: Worker) -> None:
        if self.tref is not None:
            self.tref.cancel()
