"""Delivery traces (`GET /traces/{id}`): the stages a job, an ask or a fire went through, each a
JSON entry in a list kept 24 h after its last stage."""

from __future__ import annotations

import json
from typing import Any, cast

from dispatchyard.state import keys
from dispatchyard.state.clock import iso, parse_ms
from dispatchyard.state.documents import dumps
from dispatchyard.state.store import Pipeline, Redis

TTL_S = 24 * 3600


def append(pipe: Pipeline | Redis, trace_id: str, *entries: dict[str, Any]) -> None:
    """Add stages, in the caller's MULTI when given one (else in one of its own)."""
    if isinstance(pipe, Pipeline):
        pipe.rpush(keys.trace(trace_id), *(dumps(e) for e in entries))
        pipe.expire(keys.trace(trace_id), TTL_S)
        return
    own = pipe.pipeline(transaction=True)
    append(own, trace_id, *entries)
    own.execute()


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
    append(
        pipe,
        trace_id,
        entry(name, now_ms, ok=ok, peer_id=peer_id, from_peer_id=from_peer_id, **detail),
    )


def entry(
    name: str,
    now_ms: int,
    *,
    ok: bool = True,
    peer_id: str | None = None,
    from_peer_id: str | None = None,
    **detail: Any,
) -> dict[str, Any]:
    """A stage as stored (see `stage`)."""
    return {
        "stage": name,
        "status": "ok" if ok else "fail",
        "peer_id": peer_id,
        "from_peer_id": from_peer_id,
        "ts": iso(now_ms),
        "detail": detail,
    }


def read(r: Redis, trace_id: str) -> list[dict[str, Any]]:
    """The stages in the order of their times, numbered from 1 (`seq`); empty for an unknown or
    expired trace. A shim process writes the stages of its own sockets a little after they
    happen (api_shim/stage_writer.py), so the list's order alone may put one after a later
    stage of another process; the sort is stable, so stages of the same millisecond keep the
    order they were written in."""
    stages = [json.loads(s) for s in cast(list[str], r.lrange(keys.trace(trace_id), 0, -1))]
    times = [parse_ms(s.get("ts")) for s in stages]
    if None not in times:
        order = sorted(range(len(stages)), key=lambda i: cast(int, times[i]))
        stages = [stages[i] for i in order]
    # Every stage carries the fields repowire's TraceStageInfo requires (job stages predate
    # some of them).
    base: dict[str, Any] = {"peer_id": None, "from_peer_id": None, "detail": {}}
    return [{"seq": i + 1, **base, **s} for i, s in enumerate(stages)]
