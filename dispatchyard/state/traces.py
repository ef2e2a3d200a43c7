"""Delivery traces (`GET /traces/{id}`): the stages a job, an ask or a fire went through, each a
JSON entry in a list kept 24 h after its last stage."""

from __future__ import annotations

import json
from typing import Any, cast

from dispatchyard.state import keys
from dispatchyard.state.clock import iso
from dispatchyard.state.documents import dumps
from dispatchyard.state.store import Pipeline, Redis

TTL_S = 24 * 3600


def append(pipe: Pipeline | Redis, trace_id: str, entry: dict[str, Any]) -> None:
    """Add a stage, in the caller's MULTI when given one."""
    pipe.rpush(keys.trace(trace_id), dumps(entry))
    pipe.expire(keys.trace(trace_id), TTL_S)


def stage(
    pipe: Pipeline | Redis,
    trace_id: str,
    name: str,
    now_ms: int,
    *,
    ok: bool = True,
    peer_id: str | None = None,
    from_peer_id: str | None = None,
    **detail: Any,
) -> None:
    """Record a delivery stage (`GET /traces/{id}`, docs/api.md): `created`, `resolved_peer`,
    `routed`, `websocket_sent`, `hook_received`, `pane_injected`, `pending`, `acked`, `closed`;
    failures `resolve_failed`, `no_connection`, `injection_failed`."""
    entry = {
        "stage": name,
        "status": "ok" if ok else "fail",
        "peer_id": peer_id,
        "from_peer_id": from_peer_id,
        "ts": iso(now_ms),
        "detail": detail,
    }
    append(pipe, trace_id, entry)


def read(r: Redis, trace_id: str) -> list[dict[str, Any]]:
    """The stages in order, numbered from 1 (`seq`); empty for an unknown or expired trace."""
    stages = cast(list[str], r.lrange(keys.trace(trace_id), 0, -1))
    # Every stage carries the fields repowire's TraceStageInfo requires (job stages predate
    # some of them).
    base: dict[str, Any] = {"peer_id": None, "from_peer_id": None, "detail": {}}
    return [{"seq": i + 1, **base, **json.loads(s)} for i, s in enumerate(stages)]
