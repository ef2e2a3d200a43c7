"""Beat's scheduler: RedBeat's, made to ride out a Redis outage.

RedBeat's `tick` extends the leader lock and reads the schedule from Redis; a ConnectionError
there propagates out of celery beat's loop and the process exits for good (and with it the
template tick, due one-shots, sweeps and /health's beat signal). This subclass keeps the loop
alive through an outage:

- a Redis or broker error anywhere in a tick (lock, schedule read, entry update, publish) ends
  that tick; beat sends nothing, logs one line when the outage starts and one when Redis answers
  again, and retries with exponential backoff;
- the lock is taken in the tick (non-blocking), not in RedBeat's `beat_init` receiver, so a
  standby beat stays in the loop too, and a leader that lost its lock during the outage (the key
  expired: the outage outlasted `lock_timeout`) stands by and re-acquires it before it sends
  anything. Another beat can take over as before once the lock times out;
- nothing is sent unless the lock was extended less than `LOCK_SAFE_FRACTION` of its timeout
  ago, so a tick slowed by a flapping Redis never sends on a lock that may have expired.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import redis
from celery import Celery
from celery.beat import ScheduleEntry
from celery.utils.log import get_logger
from kombu.exceptions import OperationalError
from redbeat import schedulers as redbeat
from redbeat.schedulers import RedBeatScheduler, get_redis
from redis.backoff import ExponentialBackoff
from redis.lock import Lock
from redis.retry import Retry

# celery's beat logger: these lines land beside beat's own.
log = get_logger("celery.beat")

# What "Redis is down" looks like from here: redis-py's errors (BusyLoadingError while it loads
# the AOF and Sentinel's MasterNotFoundError are ConnectionErrors) and kombu's wrapper of a failed
# publish.
OUTAGE_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OperationalError)
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 5.0
# Send only within this fraction of the lock's timeout after the extension that covers the send.
LOCK_SAFE_FRACTION = 0.5

# RedBeat takes the lock in a beat_init receiver with a blocking acquire. An outage there leaves
# `scheduler.lock` None (celery logs and swallows the error) and RedBeat's tick then dies on it;
# a standby beat would also wait there, outside the loop. This scheduler takes the lock itself.
redbeat.beat_init.disconnect(redbeat.acquire_distributed_beat_lock)


def _fail_fast(app: Celery) -> None:
    """Give RedBeat's client (made from a bare URL) the shim's short timeouts and two quick
    retries: redis-py's default ten retries (~5 s) would only hide an outage from this loop,
    and without a socket timeout a Redis that stops answering would hang beat for good."""
    client = get_redis(app)
    if not isinstance(client, redis.Redis):
        return  # RedBeat's own retrying wrapper (`retry_period` set): left as configured
    kwargs = client.get_connection_kwargs()
    kwargs.setdefault("socket_connect_timeout", 2)
    kwargs.setdefault("socket_timeout", 10)
    client.set_retry(Retry(ExponentialBackoff(cap=0.2, base=0.02), 2))


def outage_cause(exc: BaseException | None) -> BaseException | None:
    """The Redis/broker error behind `exc` (itself, or one it was raised from), if any: celery
    wraps a failed send in SchedulingError."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OUTAGE_ERRORS):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


class OutageTolerantScheduler(RedBeatScheduler):
    """RedBeat's scheduler that survives Redis outages (see the module docstring)."""

    def __init__(self, app: Celery, **kwargs: Any) -> None:
        self._outage_since: float | None = None  # monotonic start of the current outage
        self._backoff = BACKOFF_START_S
        self._standby = False
        self._send_until = 0.0  # monotonic deadline for sending under the last extension
        # One token for this process's lock: an acquire whose reply was lost to a dropped
        # connection is recognized as ours on the next try instead of waiting out the timeout.
        self._token = f"beat-{uuid.uuid4().hex}"
        if not kwargs.get("lazy"):
            _fail_fast(app)
        super().__init__(app, **kwargs)

    # ---- outage bookkeeping ------------------------------------------------------------------

    def _outage(self, exc: BaseException) -> float:
        """Note a failed attempt; returns how long to wait before the next."""
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self._backoff = BACKOFF_START_S
            log.warning(
                "beat: Redis unavailable (%s: %s); sending nothing, retrying with backoff",
                type(exc).__name__,
                exc,
            )
        else:
            self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)
        return self._backoff

    def _recovered(self) -> None:
        if self._outage_since is not None:
            log.warning(
                "beat: Redis answers again after %.1f s; ticking",
                time.monotonic() - self._outage_since,
            )
            self._outage_since = None

    # ---- schedule setup (runs once, at start) -----------------------------------------------

    def setup_schedule(self) -> None:
        # A beat started while Redis is down waits for it instead of exiting.
        while True:
            try:
                super().setup_schedule()
                break
            except Exception as exc:
                cause = outage_cause(exc)
                if cause is None:
                    raise
                time.sleep(self._outage(cause))
        self._recovered()

    # ---- the lock ----------------------------------------------------------------------------

    def _lead(self, lock_key: str) -> Lock | None:
        """Hold the lock: acquire it when this beat has none. None while another beat has it."""
        if self.lock is not None:
            return self.lock
        client = get_redis(self.app)
        # redis-py leaves `Redis.lock` unannotated: it makes a Lock.
        lock: Lock = client.lock(
            lock_key, timeout=self.lock_timeout, sleep=self.max_interval, thread_local=False
        )
        if not lock.acquire(blocking=False, token=self._token):
            if client.get(lock_key) != self._token:
                if not self._standby:
                    log.info("beat: Another beat holds the lock; standing by")
                    self._standby = True
                return None
            # Our own earlier acquire went through but its reply was lost.
            lock.local.token = self._token.encode()
        log.info("beat: Acquired lock")
        self._standby = False
        self.lock = lock
        return lock

    def _extend(self, lock: Lock) -> bool:
        """Extend the lock to its full timeout; False (and stand by) if it was lost."""
        started = time.monotonic()
        try:
            lock.reacquire()
        except redis.exceptions.LockError:
            # It expired while Redis was away (or another beat took it over since).
            log.warning("beat: Lost the lock; standing by until this beat holds it again")
            self.lock = None
            self._standby = True
            return False
        self._send_until = started + self.lock_timeout * LOCK_SAFE_FRACTION
        return True

    # ---- the loop ----------------------------------------------------------------------------

    def tick(self, *_args: object, **_kwargs: object) -> float:
        # Beat's service calls tick() with no arguments; RedBeat's optional `min` goes unused.
        try:
            interval = self._tick()
        except Exception as exc:
            cause = outage_cause(exc)
            if cause is None:
                raise
            return self._outage(cause)
        self._recovered()
        return interval

    def _tick(self) -> float:
        # RedBeat's tick, with the lock taken here and every send covered by a fresh extension.
        if self.lock_key:
            lock = self._lead(self.lock_key)
            if lock is None or not self._extend(lock):
                return self.max_interval
        remaining_times = []
        try:
            for entry in self.schedule.values():
                if self.lock_key and time.monotonic() > self._send_until:
                    break  # the next tick extends the lock before sending the rest
                next_time_to_run = self.maybe_due(entry, **self._maybe_due_kwargs)
                if next_time_to_run:
                    remaining_times.append(next_time_to_run)
        except RuntimeError:
            log.debug("beat: RuntimeError", exc_info=True)
        return min([*remaining_times, self.max_interval])

    def maybe_due(self, entry: ScheduleEntry, **kwargs: Any) -> float:
        # RedBeat's maybe_due logs any send error with its stack trace and goes on to the next
        # entry: in an outage that is a trace per entry per tick. Here an outage ends the tick
        # (one line, in `tick`); other errors are logged as before. An entry whose next run was
        # recorded but whose message was not published skips that run.
        is_due, next_time_to_run = entry.is_due()
        if is_due:
            log.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
            try:
                result = self.apply_async(entry, **kwargs)
            except Exception as exc:
                if outage_cause(exc) is not None:
                    raise
                log.exception("Scheduler: Message Error: %s", exc)
            else:
                log.debug("Scheduler: %s sent. id->%s", entry.task, getattr(result, "id", None))
        return next_time_to_run

    def close(self) -> None:
        lock, self.lock = self.lock, None
        if lock is not None:
            try:
                if lock.owned():
                    log.info("beat: Releasing lock")
                    lock.release()
            except redis.exceptions.LockError:
                pass  # expired or taken over meanwhile: nothing of ours to release
            except Exception as exc:
                if outage_cause(exc) is None:
                    raise
                log.warning("beat: Redis unavailable at shutdown; the lock expires by itself")
        try:
            super().close()
        except Exception as exc:
            # Closing the broker connection during an outage: nothing left to flush.
            if outage_cause(exc) is None:
                raise
