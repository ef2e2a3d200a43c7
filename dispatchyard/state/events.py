"""The event log: one Redis stream of mesh and job events (`GET /events`, `/events/stream`, the
dashboard). An event is `{id, type, timestamp, ...fields}` as repowire's MeshEvent; the stream
id is its id, so a reader resumes after the last one it saw."""

from __future__ import annotations

import json
from typing import Any, cast

from dispatchyard.state import keys
from dispatchyard.state.clock import iso
from dispatchyard.state.store import Pipeline, Redis

MAXLEN = 100_000
RECENT = 500  # what GET /events answers, as repowire's buffered window


def append(pipe: Pipeline | Redis, kind: str, now_ms: int, fields: dict[str, Any]) -> None:
    """Add an event, in the caller's MULTI when given one. Values are stored as JSON."""
    body = {"type": kind, "timestamp": iso(now_ms), "data": json.dumps(fields, default=str)}
    pipe.xadd(keys.EVENTS, cast(Any, body), maxlen=MAXLEN, approximate=True)


def _event(entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
    if "data" in fields:  # mesh events
        data = json.loads(fields["data"])
        return {"id": entry_id, "type": fields["type"], "timestamp": fields["timestamp"], **data}
    # Job state changes are written flat, beside the job's document (state/jobs.py).
    out: dict[str, Any] = {"id": entry_id, "timestamp": fields.get("at", ""), **fields}
    out.pop("at", None)
    return out


def recent(r: Redis, since: str | None = None, limit: int = RECENT) -> list[dict[str, Any]]:
    """The newest `limit` events, oldest first; only those after `since` when it is given and
    still in the window (else the whole window, for a reader that fell behind)."""
    rows = cast(list[tuple[str, dict[str, str]]], r.xrevrange(keys.EVENTS, count=limit))
    rows.reverse()
    if since is not None and any(entry_id == since for entry_id, _ in rows):
        rows = rows[[entry_id for entry_id, _ in rows].index(since) + 1 :]
    return [_event(entry_id, fields) for entry_id, fields in rows]


def after(r: Redis, last_id: str, block_ms: int) -> list[dict[str, Any]]:
    """Events after `last_id` ('$' = from now), waiting up to `block_ms` (at least 1: 0 would
    wait forever) for the first. Keep `block_ms` within `longest_block_ms(r)`: a read still
    blocked when the client's socket timeout fires raises TimeoutError."""
    found = cast(
        list[tuple[str, list[tuple[str, dict[str, str]]]]],
        r.xread({keys.EVENTS: last_id}, count=100, block=block_ms),
    )
    return [_event(entry_id, fields) for _, rows in found for entry_id, fields in rows]


def longest_block_ms(r: Redis) -> int | None:
    """The longest wait for `after` on this client: half its socket timeout, which leaves the
    server's answer to an idle read time to arrive (None: the client has no socket timeout)."""
    timeout = r.connection_pool.connection_kwargs.get("socket_timeout")
    return None if timeout is None else max(1, int(float(timeout) * 500))


def last_id(r: Redis) -> str:
    rows = cast(list[tuple[str, dict[str, str]]], r.xrevrange(keys.EVENTS, count=1))
    return rows[0][0] if rows else "0-0"
