"""Deliveries queued for a peer no socket holds: a notify to any such peer, an ask to a peer
that polls (registered with `metadata.repowire_cli_fallback`). Its next socket gets them pushed
on connect; `GET /deliveries/pending` drains them (the dashboard only peeks). Kept 24 h, the
newest 100 a peer (repowire's `delivery_queue_max_per_peer`): an older one is dropped."""

from __future__ import annotations

import json
from typing import Any, cast

from dispatchyard.state import keys
from dispatchyard.state.clock import iso
from dispatchyard.state.documents import dumps
from dispatchyard.state.store import Redis

KEPT_MS = 24 * 3600 * 1000
MAX_PER_PEER = 100


def push(r: Redis, peer_id: str, frame: dict[str, Any], now_ms: int) -> None:
    """Queue a frame (notify or ask) for the peer, oldest first; past MAX_PER_PEER the oldest
    goes."""
    record = {**frame, "created_at": iso(now_ms), "expires_at": iso(now_ms + KEPT_MS)}
    pipe = r.pipeline(transaction=True)
    pipe.rpush(keys.deliveries(peer_id), dumps(record))
    pipe.ltrim(keys.deliveries(peer_id), -MAX_PER_PEER, -1)
    pipe.pexpire(keys.deliveries(peer_id), KEPT_MS)
    pipe.execute()


def drain(r: Redis, peer_id: str, max_results: int) -> list[dict[str, Any]]:
    """Take up to `max_results` queued deliveries off the queue (delete on drain, so the same
    paste is not replayed), in PendingDelivery's shape."""
    popped = cast(list[str] | None, r.lpop(keys.deliveries(peer_id), max_results))
    return _shaped(popped or [])


def peek(r: Redis, peer_id: str, max_results: int) -> list[dict[str, Any]]:
    """The first `max_results` queued deliveries, left on the queue (the dashboard's view)."""
    return _shaped(cast(list[str], r.lrange(keys.deliveries(peer_id), 0, max_results - 1)))


def _shaped(raws: list[str]) -> list[dict[str, Any]]:
    out = []
    for raw in raws:
        frame = json.loads(raw)
        out.append(
            {
                "delivery_id": frame.get("delivery_id") or frame.get("correlation_id"),
                "kind": frame["type"],
                "from_peer": frame.get("from_peer", ""),
                "to_peer": frame.get("to_peer", ""),
                "text": frame.get("text", ""),
                "created_at": frame["created_at"],
                "expires_at": frame["expires_at"],
                "correlation_id": frame.get("correlation_id"),
                "attachments": frame.get("attachments") or [],
            }
        )
    return out
