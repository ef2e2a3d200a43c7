"""The peer registry: agents (and services, humans) that jobs and asks are delivered to.

A peer's status follows its transport: online (or busy) while a live WebSocket holds it,
offline otherwise; `retired` is an offline that refuses the same identity's registrations
unless its agent process is alive. Its status moves only through `PEER_TRANSITIONS`, checked in
the atomic step that writes it. Peer ids are `repow-<circle>-<8hex>`; names are unique within a
circle. The same scripts keep the peers of each status and of each circle in a SET, so a list
reads only the peers it may return, and keep the name, pane and peers-named indexes with every
registration, removal and circle move.
"""

from __future__ import annotations

import json
import secrets
from typing import Any, cast

import redis

from dispatchyard.state import keys, store
from dispatchyard.state.models import PEER_CONNECTED, PeerState
from dispatchyard.state.scripts import scripts

FIELDS_JSON = ("metadata",)
# A registration that leaves these unset (None) keeps what an earlier one said: a WebSocket
# connect frame carries no machine, and a hook that does not report its model keeps the known
# one.
KEPT_WHEN_UNSET = ("machine", "model")
# The filters of `list_all` that have an index, and the index of a value.
_INDEXED = {"status": keys.peers_in_state, "circle": keys.peers_in_circle}

Peer = dict[str, Any]
# Roles that reach, and are reached from, every circle.
CROSS_CIRCLE_ROLES = ("service", "orchestrator", "human")


def new_id(circle: str) -> str:
    return f"repow-{circle}-{secrets.token_hex(4)}"


def register(r: redis.Redis, fields: dict[str, Any], now_ms: int, *, revive: bool = False) -> Peer:
    """Register (or re-register, by name in its circle) a peer; online only while a live
    socket holds it. Conflict (its `state` 'retired') for a retired peer unless `revive` (its
    agent process is alive); Conflict when PEER_TRANSITIONS forbids the move."""
    circle, name = fields["circle"], fields["name"]
    stored = {
        k: json.dumps(v) if k in FIELDS_JSON else ("" if v is None else v)
        for k, v in fields.items()
        if not (v is None and k in KEPT_WHEN_UNSET)
    }
    stored["last_seen"] = now_ms
    peer_id = scripts(r).register_peer(
        keys=[
            keys.peer_name(circle, name),
            keys.PEERS,
            keys.peers_named(name),
            keys.peer_pane(fields["pane_id"]) if fields.get("pane_id") else "",
            keys.peers_in_circle(circle),
        ],
        args=[
            fields.get("peer_id") or new_id(circle),
            now_ms,
            json.dumps(stored),
            "1" if revive else "0",
        ],
    )
    peer = get(r, peer_id)
    assert peer is not None  # just written
    return peer


def _load(raw: dict[str, str]) -> Peer:
    peer: Peer = {k: (v if v != "" else None) for k, v in raw.items()}
    for k in FIELDS_JSON:
        peer[k] = json.loads(raw[k]) if raw.get(k) else {}
    return peer


def get(r: redis.Redis, peer_id: str) -> Peer | None:
    found = _get_many(r, [peer_id])
    return found[0] if found else None


def _get_many(r: redis.Redis, peer_ids: list[str]) -> list[Peer]:
    """The known peers among `peer_ids`, in that order, each with `ws_connected` and the status
    its transport decides: a peer stored online whose holder died is offline. One round trip."""
    if not peer_ids:
        return []
    pipe = r.pipeline(transaction=False)
    for peer_id in peer_ids:
        pipe.hgetall(keys.peer(peer_id))
        pipe.exists(keys.peer_ws(peer_id))
    out = pipe.execute()
    found = []
    for raw, connected in zip(out[::2], out[1::2], strict=True):
        if not raw:
            continue
        peer = _load(raw)
        peer["ws_connected"] = bool(connected)
        if not connected and peer.get("status") in PEER_CONNECTED:
            peer["status"] = PeerState.OFFLINE
        found.append(peer)
    return found


def resolve(r: redis.Redis, ident: str, circle: str | None = None) -> Peer | list[Peer] | None:
    """A peer by id or name. A name found in several circles (no circle given) gives the list
    of candidates; unknown gives None."""
    if ident.startswith("repow-"):
        return get(r, ident)
    if circle:
        peer_id = store.get(r, keys.peer_name(circle, ident))
        return get(r, peer_id) if peer_id else None
    return _one_or_many(_get_many(r, sorted(store.smembers(r, keys.peers_named(ident)))))


def _one_or_many(found: list[Peer]) -> Peer | list[Peer] | None:
    if not found:
        return None
    return found[0] if len(found) == 1 else found


def resolve_preferring(r: redis.Redis, ident: str, circle: str | None) -> Peer | None:
    """A peer by id or name: the one in `circle` when the name is there, else the only one of
    that name anywhere; None when unknown or when the name is in several other circles (it
    names no one peer). Two round trips at most."""
    if ident.startswith("repow-"):
        return get(r, ident)
    pipe = r.pipeline(transaction=False)
    pipe.get(keys.peer_name(circle, ident) if circle else "")
    pipe.smembers(keys.peers_named(ident))
    in_circle, anywhere = pipe.execute()
    ids = [in_circle] if in_circle else list(anywhere) if len(anywhere) == 1 else []
    found = _get_many(r, ids)
    return found[0] if found else None


def by_pane(r: redis.Redis, pane_id: str) -> Peer | None:
    """The peer last registered on a tmux pane."""
    peer_id = store.get(r, keys.peer_pane(pane_id))
    return get(r, peer_id) if peer_id else None


def list_all(r: redis.Redis, **filters: str | None) -> list[Peer]:
    """The peers whose fields equal every given filter (None: any), in registration order.
    Only the peers in the status and circle indexes of the filters are read."""
    # An offline peer may still sit in the online index (its holder died): the status index
    # narrows only a search for connected peers.
    indexes = [
        _INDEXED[k](v)
        for k, v in filters.items()
        if k in _INDEXED and v is not None and (k != "status" or v in PEER_CONNECTED)
    ]
    if indexes:
        found = _get_many(r, list(cast(set[str], r.sinter(indexes))))
        # As the peers ZSET orders them: by registration time, then by id.
        found.sort(key=lambda p: (int(p.get("registered_at") or 0), p["peer_id"]))
    else:
        found = _get_many(r, store.zrange(r, keys.PEERS))
    # Every filter again, indexed ones too: an index entry may be older than the record.
    return [p for p in found if all(v is None or p.get(k) == v for k, v in filters.items())]


def set_status(r: redis.Redis, peer_id: str, status: PeerState, now_ms: int) -> None:
    """Set a known peer's status. NotFound; Conflict (nothing written) for a move
    PEER_TRANSITIONS forbids."""
    scripts(r).set_peer_status(keys=[keys.peer(peer_id)], args=[peer_id, status, now_ms])


def find_online(
    r: redis.Redis, *, path: str | None, backend: str | None, circle: str
) -> Peer | None:
    """An online peer working in `path` with `backend` in `circle` (for unassigned persistent
    jobs)."""
    if not path:
        return None
    found = list_all(r, status=PeerState.ONLINE, circle=circle, backend=backend, path=path)
    return found[0] if found else None
