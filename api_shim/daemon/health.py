"""GET /health: 200 while Redis answers, 503 with the same shape when it does not; `degraded`
(still 200) while Redis memory is near its `maxmemory`."""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import redis

from api_shim.context import r, settings
from api_shim.daemon import answers, blueprint
from api_shim.declare import declare
from dispatchyard.state import clock, liveness, stats
from dispatchyard.state.clock import iso

try:
    VERSION = version("dispatchyard")
except PackageNotFoundError:  # running from a source tree without install
    VERSION = "0.0.0"


def _memory() -> stats.Memory | None:
    try:
        return stats.memory(r())
    except redis.exceptions.ResponseError:  # INFO refused (renamed by a managed Redis)
        return None


@blueprint.get("/health")
@declare(open=True, responses={200: answers.Health, 503: answers.Health})
def health() -> tuple[dict[str, Any], int]:
    started = time.perf_counter()
    online, last_tick, memory = 0, None, None
    try:
        r().ping()
        ok = True
        latency = round((time.perf_counter() - started) * 1000, 3)
        now = clock.now_ms()
        online = liveness.nodes_online(r(), now)
        last_tick = liveness.last_beat_tick(r())
        memory = _memory()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        ok, latency = False, None
    # Beat ticks every 5 s through a worker; two missed ticks means it is not running.
    beat_alive = last_tick is not None and clock.now_ms() - last_tick < 15_000
    near_full = memory is not None and memory.near_full
    ratio = memory.ratio if memory is not None else None
    body: dict[str, Any] = {
        "status": "ok" if ok and not near_full else "degraded",
        "version": VERSION,
        "relay_mode": False,
        "redis": {
            "ok": ok,
            "latency_ms": latency,
            "used_memory": memory.used if memory is not None else None,
            "maxmemory": memory.limit if memory is not None else None,
            "memory_used_ratio": round(ratio, 4) if ratio is not None else None,
        },
        "workers": {"online": online},
        "beat": {"alive": beat_alive, "last_tick_at": iso(last_tick) if last_tick else None},
        "daemon_auth": settings().daemon_auth_token is not None,
    }
    return body, 200 if ok else 503
