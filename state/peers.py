"""The peer registry: agents (and services, humans) that jobs and asks are delivered to.

A registered peer is `online` until it is marked offline (its connection ended, or an operator
said so). Peer ids are `repow-<circle>-<8hex>`; names are unique within a circle.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import redis

from state import keys
from state.scripts import scripts

FIELDS_JSON = ("metadata",)


def new_id(circle: str) -> str:
    return f"repow-{circle}-{secrets.token_hex(4)}"


def register(r: redis.Redis, fields: dict[str, Any], now_ms: int) -> dict[str, Any]:
    circle, name = fields["circle"], fields["name"]
    stored = {
        k: json.dumps(v) if k in FIELDS_JSON else ("" if v is None else v)
        for k, v in fields.items()
    }
    stored.update(status="online", last_seen=now_ms)
    peer_id = scripts(r).register_peer(
        keys=[
            keys.peer_name(circle, name),
            keys.PEERS,
            keys.peers_named(name),
            keys.peer_pane(fields["pane_id"]) if fields.get("pane_id") else "",
        ],
        args=[keys.peer(""), fields.get("peer_id") or new_id(circle), now_ms, json.dumps(stored)],
    )
    return get(r, peer_id)  # type: ignore[return-value]


def _load(raw: dict[str, str]) -> dict[str, Any]:
    peer: dict[str, Any] = {k: (v if v != "" else None) for k, v in raw.items()}
    for k in FIELDS_JSON:
        peer[k] = json.loads(raw[k]) if raw.get(k) else {}
    return peer


def get(r: redis.Redis, peer_id: str) -> dict[str, Any] | None:
    raw = r.hgetall(keys.peer(peer_id))
    return _load(raw) if raw else None  # type: ignore[arg-type]


def resolve(
    r: redis.Redis, ident: str, circle: str | None = None
) -> dict[str, Any] | list[dict[str, Any]] | None:
    """A peer by id or name. A name found in several circles (no circle given) gives the list
    of candidates; unknown gives None."""
    if ident.startswith("repow-"):
        return get(r, ident)
    if circle:
        peer_id = r.get(keys.peer_name(circle, ident))
        return get(r, peer_id) if peer_id else None  # type: ignore[arg-type]
    ids: list[str] = sorted(r.smembers(keys.peers_named(ident)))  # type: ignore[arg-type]
    found = [p for p in (get(r, i) for i in ids) if p]
    if not found:
        return None
    return found[0] if len(found) == 1 else found


def by_pane(r: redis.Redis, pane_id: str) -> dict[str, Any] | None:
    """The peer last registered on a tmux pane."""
    peer_id = r.get(keys.peer_pane(pane_id))
    return get(r, peer_id) if peer_id else None  # type: ignore[arg-type]


def list_all(r: redis.Redis, **filters: str | None) -> list[dict[str, Any]]:
    ids: list[str] = r.zrange(keys.PEERS, 0, -1)  # type: ignore[assignment]
    pipe = r.pipeline(transaction=False)
    for peer_id in ids:
        pipe.hgetall(keys.peer(peer_id))
    peers = [_load(raw) for raw in pipe.execute() if raw]
    return [p for p in peers if all(v is None or p.get(k) == v for k, v in filters.items())]


def set_status(r: redis.Redis, peer_id: str, status: str, now_ms: int) -> bool:
    """Set a known peer's status; False (and nothing written) for an unknown one."""
    return bool(scripts(r).set_peer_status(keys=[keys.peer(peer_id)], args=[status, now_ms]))


def find_online(
    r: redis.Redis, *, path: str | None, backend: str | None, circle: str
) -> dict | None:
    """An online peer working in `path` with `backend` in `circle` (for unassigned persistent
    jobs)."""
    for peer in list_all(r, status="online", circle=circle, backend=backend):
        if path and peer.get("path") == path:
            return peer
    return None
