"""The two error envelopes: `{"error": ..}` under /api, `{"detail": ..}` for the daemon group."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from flask import Blueprint, Flask, Response, g, jsonify, request
from kombu.exceptions import OperationalError
from werkzeug.exceptions import HTTPException

from dispatchyard.state import errors as state_errors
from dispatchyard.state.errors import StateError

log = logging.getLogger("dispatchyard.shim")


class ApiError(Exception):
    """An answer other than success. `detail` overrides the daemon body; `extra` joins the
    platform body beside `error`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        detail: Any = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


class BrokerUnavailable(Exception):
    """A task could not be published: the broker (the same Redis) is down. `recorded_job_id`
    names the job that was stored before the publish failed: it exists and the scheduler tick
    resends its fire once the broker is back, so the caller must not create it again."""

    def __init__(self, recorded_job_id: str | None = None) -> None:
        super().__init__("broker unavailable")
        self.recorded_job_id = recorded_job_id


class StoreFull(Exception):
    """Redis refused a write because it reached its `maxmemory` (with `noeviction`, every write
    fails then), in a task publish. `recorded_job_id` as for BrokerUnavailable."""

    def __init__(self, recorded_job_id: str | None = None) -> None:
        super().__init__("store full")
        self.recorded_job_id = recorded_job_id


def oom_caused(e: BaseException) -> bool:
    """Whether `e` is, or was raised from, Redis refusing a write for `maxmemory`."""
    seen: BaseException | None = e
    for _ in range(8):  # a chain is short; never follow a cycle
        if seen is None:
            return False
        if isinstance(seen, redis.exceptions.OutOfMemoryError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _OutageLog:
    """One warning when this process's requests start failing on Redis and one when they
    succeed again: an outage under load is two log lines, not one per request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None

    def down(self, exc: Exception) -> None:
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        log.warning("redis unavailable (%s); answering 503 until it is back", type(exc).__name__)

    def up(self, request_started: float) -> None:
        """A request that started at `request_started` (monotonic) succeeded."""
        since = self._since
        # Without the lock in the common case; a request already under way when the outage
        # began proves nothing about Redis now.
        if since is None or request_started <= since:
            return
        with self._lock:
            if self._since != since:
                return
            self._since = None
        log.warning("redis answers again after %.1f s", time.monotonic() - since)


_outage = _OutageLog()


class _FullLog:
    """A warning when Redis refuses a write for its maxmemory, at most one a minute."""

    def __init__(self) -> None:
        self._last = -60.0

    def warn(self, what: str) -> None:
        now = time.monotonic()
        if now - self._last >= 60.0:
            self._last = now
            log.warning("redis refuses writes: maxmemory reached (%s); answering 507", what)


_full_log = _FullLog()
RETRY_AFTER = {"Retry-After": "1"}
STORE_FULL_RETRY = {"Retry-After": "10"}  # memory is freed by deletions, the sweeps' pace


def is_platform() -> bool:
    return request.path.startswith("/api/") or request.path == "/api"


def envelope(err: ApiError) -> Response:
    if is_platform():
        body = {"error": err.message, **err.extra}
    else:
        body = {"detail": err.detail if err.detail is not None else err.message}
    resp = jsonify(body)
    resp.status_code = err.status
    for k, v in err.headers.items():
        resp.headers[k] = v
    return resp


# A state refusal's status, by its class (the most specific class listed wins). Both route
# groups answer a kind of refusal with the same status; each group's envelope carries it.
REFUSAL_STATUS: dict[type[StateError], int] = {
    state_errors.NotFound: 404,
    state_errors.Forbidden: 403,
    state_errors.Conflict: 409,
    state_errors.Gone: 410,
    state_errors.TooLarge: 413,
    state_errors.QuotaExceeded: 507,
    state_errors.Unauthorized: 401,
    state_errors.Invalid: 400,
    state_errors.Unavailable: 503,
    StateError: 400,
}


def refusal(err: StateError) -> ApiError:
    """The answer to a state refusal: the status for its class, its message (or `detail`, for
    the daemon body), its fields beside `error` in the platform body."""
    status = next(REFUSAL_STATUS[cls] for cls in type(err).__mro__ if cls in REFUSAL_STATUS)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return ApiError(status, err.message, detail=err.detail, headers=headers, **err.fields)


def answers_refusals(blueprint: Blueprint) -> None:
    """Every StateError raised by the group's routes answers in the group's envelope."""

    def handle(err: StateError) -> Response:
        return envelope(refusal(err))

    blueprint.register_error_handler(StateError, handle)


_HTTP_MESSAGES = {
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
    415: "Unsupported media type",
}


def register(app: Flask) -> None:
    app.register_error_handler(ApiError, envelope)

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException) -> Response:
        # The daemon group answers as repowire (FastAPI) does: {"detail": "Not Found"}.
        message = _HTTP_MESSAGES.get(e.code or 500, e.name) if is_platform() else e.name
        return envelope(ApiError(e.code or 500, message))

    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    @app.errorhandler(redis.exceptions.BusyLoadingError)
    def _redis_down(e: Exception) -> Response:
        _outage.down(e)
        return envelope(ApiError(503, "Store unavailable, retry shortly", headers=RETRY_AFTER))

    @app.errorhandler(redis.exceptions.OutOfMemoryError)
    @app.errorhandler(StoreFull)
    def _store_full(e: Exception) -> Response:
        # Redis refuses a write at its maxmemory (noeviction); a script or a MULTI refused so
        # wrote nothing. 507, never 500: the request may be retried once memory is freed.
        _full_log.warn(type(e).__name__)
        job_id = getattr(e, "recorded_job_id", None)
        message = "Store full: Redis reached its maxmemory and refuses writes; retry later"
        if job_id is None:
            return envelope(ApiError(507, message, headers=STORE_FULL_RETRY))
        message = (
            f"Store full: job {job_id} was recorded but not fired yet; it fires once Redis "
            "accepts writes again. Do not create it again."
        )
        detail = {"error": "store_full", "job_id": job_id, "message": message}
        return envelope(
            ApiError(507, message, detail=detail, headers=STORE_FULL_RETRY, job_id=job_id)
        )

    @app.errorhandler(BrokerUnavailable)
    @app.errorhandler(OperationalError)  # kombu's, from any publish not made by enqueue.send
    def _broker_down(e: Exception) -> Response:
        _outage.down(e)
        job_id = getattr(e, "recorded_job_id", None)
        if job_id is None:
            return envelope(ApiError(503, "Broker unavailable, retry shortly", headers=RETRY_AFTER))
        # 503 (the fire did not go out), but say that the job exists: a client that simply
        # retried the create would make a second job.
        message = (
            f"Broker unavailable: job {job_id} was recorded but not fired yet; it fires when "
            "the broker is back. Do not create it again."
        )
        detail = {"error": "broker_unavailable", "job_id": job_id, "message": message}
        return envelope(ApiError(503, message, detail=detail, headers=RETRY_AFTER, job_id=job_id))

    @app.before_request
    def _note_start() -> None:
        g.started = time.monotonic()

    @app.after_request
    def _outage_over(resp: Response) -> Response:
        if resp.status_code < 400:
            _outage.up(g.get("started", 0.0))
        return resp

    @app.errorhandler(Exception)
    def _unexpected(e: Exception) -> Response:
        # Never a stack trace to the client; the log keeps the type and route, not the body.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return envelope(ApiError(500, "Internal error"))
