"""Asks persisted in Redis (repowire keeps them in memory; here a restart loses none)."""

from __future__ import annotations

import json
import secrets
from typing import Any

import redis

from state import keys, store

PENDING_SHOWN = 10
SHOWN_FIELDS = ("correlation_id", "from_peer", "to_peer", "text", "created_at")


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
    pipe = r.pipeline(transaction=True)
    pipe.hset(
        keys.ask(correlation_id),
        mapping={
            "correlation_id": correlation_id,
            "from_peer": from_peer,
            "to_peer": to_peer,
            "to_peer_id": to_peer_id,
            "text": text,
            "created_at": now_iso,
            "status": "open",
            "extra": json.dumps(extra or {}),
        },
    )
    pipe.zadd(keys.asks_inbound(to_peer_id), {correlation_id: now_ms})
    pipe.zadd(keys.asks_outbound(from_peer), {correlation_id: now_ms})
    pipe.execute()
    return correlation_id


def get(r: redis.Redis, correlation_id: str) -> dict[str, str] | None:
    return store.hgetall(r, keys.ask(correlation_id)) or None


def pending(r: redis.Redis, peer_id: str, peer_name: str, direction: str) -> list[dict[str, str]]:
    """Open asks to (inbound) and/or from (outbound) a peer, newest first, at most 10."""
    indexes = {"inbound": keys.asks_inbound(peer_id), "outbound": keys.asks_outbound(peer_name)}
    rows: list[tuple[float, str, str]] = []
    for kind, key in indexes.items():
        if direction in (kind, "both"):
            found = store.zrevrange_scored(r, key, 0, PENDING_SHOWN - 1)
            rows += [(score, cid, kind) for cid, score in found]
    rows.sort(reverse=True)
    rows = rows[:PENDING_SHOWN]
    records = store.hgetall_many(r, [keys.ask(cid) for _, cid, _ in rows])
    return [
        {k: record[k] for k in SHOWN_FIELDS} | {"direction": kind}
        for (_, _, kind), record in zip(rows, records, strict=True)
        if record
    ]


def close(r: redis.Redis, correlation_id: str, now_iso: str) -> str:
    """'closed' | 'already_closed' | 'not_found'. Closing is idempotent."""

    def txn(pipe: redis.client.Pipeline) -> str:
        record = store.hgetall(pipe, keys.ask(correlation_id))
        if not record:
            return "not_found"
        if record["status"] == "closed":
            return "already_closed"
        pipe.multi()
        pipe.hset(keys.ask(correlation_id), mapping={"status": "closed", "closed_at": now_iso})
        pipe.zrem(keys.asks_inbound(record["to_peer_id"]), correlation_id)
        pipe.zrem(keys.asks_outbound(record["from_peer"]), correlation_id)
        return "closed"

    outcome: str = store.transaction(r, txn, keys.ask(correlation_id))
    return outcome
