"""A worker bootstep that says, every few seconds, that this worker and its machine are alive:
the scheduler only sends a fire to `fires.<machine>` when that machine has a live worker, and
/health counts online workers."""

from __future__ import annotations

import logging

import redis
from celery import bootsteps

from settings import get_settings, redis_client
from state import clock, machines

log = logging.getLogger(__name__)
INTERVAL_S = 5.0


class Liveness(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None
        self.r = None

    def start(self, worker):
        from workers.app import machine_name

        self.r = redis_client(get_settings())
        self.machine = machine_name()
        self.beat(worker)
        self.tref = worker.timer.call_repeatedly(INTERVAL_S, self.beat, (worker,), priority=10)

    def beat(self, worker):
        try:
            machines.beat(self.r, self.machine, worker.hostname, clock.now_ms())
        except redis.exceptions.RedisError:
            log.debug("liveness beat skipped: store unavailable")

    def stop(self, worker):
        if self.tref is not None:
            self.tref.cancel()
