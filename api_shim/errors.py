"""The two error envelopes: `{"error": ..}` under /api, `{"detail": ..}` for the daemon group."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

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


def is_platform() -> bool:
    return request.path.startswith("/api/") or request.path == "/api"


def envelope(err: ApiError):
    if is_platform():
        body = {"error": err.message, **err.extra}
    else:
        body = {"detail": err.detail if err.detail is not None else err.message}
    resp = jsonify(body)
    resp.status_code = err.status
    for k, v in err.headers.items():
        resp.headers[k] = v
    return resp


_HTTP_MESSAGES = {
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
    415: "Unsupported media type",
}


def register(app: Flask) -> None:
    app.register_error_handler(ApiError, envelope)

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):
        # The daemon group answers as repowire (FastAPI) does: {"detail": "Not Found"}.
        message = _HTTP_MESSAGES.get(e.code or 500, e.name) if is_platform() else e.name
        return envelope(ApiError(e.code or 500, message))

    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    @app.errorhandler(redis.exceptions.BusyLoadingError)
    def _redis_down(e: Exception):
        log.warning("redis unavailable: %s", type(e).__name__)
        return envelope(
            ApiError(503, "Store unavailable, retry shortly", headers={"Retry-After": "1"})
        )

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        # Never a stack trace to the client; the log keeps the type and route, not the body.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return envelope(ApiError(500, "Internal error"))
