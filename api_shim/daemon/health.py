"""GET /health: 200 while Redis answers, 503 with the same shape when it does not."""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version

import redis

from api_shim.context import r
from api_shim.daemon import blueprint

try:
    VERSION = version("dispatchyard")
except PackageNotFoundError:  # running from a source tree without install
    VERSION = "0.0.0"


@blueprint.get("/health")
def health():
    started = time.perf_counter()
    try:
        r().ping()
        ok = True
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        ok = False
    body = {
        "status": "ok" if ok else "degraded",
        "version": VERSION,
        "redis": {"ok": ok, "latency_ms": round((time.perf_counter() - started) * 1000, 3)},
    }
    return body, 200 if ok else 503
