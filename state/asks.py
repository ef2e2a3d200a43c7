"""Asks persisted in Redis (repowire keeps them in memory; here a restart loses none)."""

from __future__ import annotations

import json
import secrets
from typing import Any

import redis

from state import keys

PENDING_SHOWN = 10


def new_id() -> str:
    return f"ask-{secrets.token_hex(4)}"


def open_ask(
    r: redis.Redis,
    *,
    from_peer: str,
    to_peer_id: str,
    to_peer: str,
    text: str,
    now_iso: str,
    now_ms: int,
    extra: dict[str, Any] | None = None,
) -> str:
    """Store an open ask for peer `to_peer_id` (named `to_peer`); returns its correlation id.
    `from_peer` is the asker's name (and the key of its outbound list)."""
    correlation_id = new_id()
    record = {
        "correlation_id": correlation_id,
        "from_peer": from_peer,
        "to_peer": to_peer,
        "to_peer_id": to_peer_id,
        "text": text,
        "created_at": now_iso,
        "status": "open",
        "extra": json.dumps(extra or {}),
    }
    pipe = r.pipeline(transaction=True)
    pipe.hset(keys.ask(correlation_id), mapping=record)  # type: ignore[arg-type]
    pipe.zadd(keys.asks_inbound(to_peer_id), {correlation_id: now_ms})
    pipe.zadd(keys.asks_outbound(from_peer), {correlation_id: now_ms})
    pipe.execute()
    return correlation_id


def get(r: redis.Redis, correlation_id: str) -> dict[str, Any] | None:
    record = r.hgetall(keys.ask(correlation_id))
    return record or None  # type: ignore[return-value]


def pending(r: redis.Redis, peer_id: str, peer_name: str, direction: str) -> list[dict[str, Any]]:
    """Open asks to (inbound) and/or from (outbound) a peer, newest first, at most 10."""
    rows: list[tuple[float, str, str]] = []
    for kind, key in (("inbound", keys.asks_inbound(peer_id)),
                      ("outbound", keys.asks_outbound(peer_name))):  # fmt: skip
        if direction in (kind, "both"):
            found: list[tuple[str, float]] = r.zrevrange(  # type: ignore[assignment]
                key, 0, PENDING_SHOWN - 1, withscores=True
            )
            rows += [(score, cid, kind) for cid, score in found]
    rows.sort(reverse=True)
    out = []
    for _, cid, kind in rows[:PENDING_SHOWN]:
        record = get(r, cid)
        if record:
            out.append({k: record[k] for k in ("correlation_id", "from_peer", "to_peer", "text",
                                               "created_at")} | {"direction": kind})  # fmt: skip
    return out


def close(r: redis.Redis, correlation_id: str, now_iso: str) -> str:
    """'closed' | 'already_closed' | 'not_found'. Closing is idempotent."""

    def txn(pipe: redis.client.Pipeline) -> str:
        record: dict[str, str] = pipe.hgetall(keys.ask(correlation_id))  # type: ignore[assignment]
        if not record:
            return "not_found"
        if record["status"] == "closed":
            return "already_closed"
        pipe.multi()
        pipe.hset(keys.ask(correlation_id), mapping={"status": "closed", "closed_at": now_iso})
        pipe.zrem(keys.asks_inbound(record["to_peer_id"]), correlation_id)
        pipe.zrem(keys.asks_outbound(record["from_peer"]), correlation_id)
        return "closed"

    return r.transaction(txn, keys.ask(correlation_id), value_from_callable=True)  # type: ignore[arg-type, return-value]
