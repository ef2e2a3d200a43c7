"""The peer registry: agents (and services, humans) that jobs and asks are delivered to.

A registered peer is `online` until it is marked offline (its connection ended, or an operator
said so); its status moves only through `PEER_TRANSITIONS`, checked by the script that writes
it. Peer ids are `repow-<circle>-<8hex>`; names are unique within a circle. The same scripts
keep the peers of each status and of each circle in a SET, so a list reads only the peers it
may return.
"""

from __future__ import annotations

import json
import secrets
from typing import Any, cast

import redis

from state import keys, store
from state.models import PEER_INITIAL, PEER_TRANSITIONS, PeerState, allowed_from
from state.scripts import scripts

FIELDS_JSON = ("metadata",)
# ARGV 1 of register_peer.lua, serialized once.
_PREFIXES = json.dumps(keys.PEER_SCRIPT_PREFIXES)
# The filters of `list_all` that have an index, and the index of a value.
_INDEXED = {"status": keys.peers_in_state, "circle": keys.peers_in_circle}

Peer = dict[str, Any]


def new_id(circle: str) -> str:
    return f"repow-{circle}-{secrets.token_hex(4)}"


def register(r: redis.Redis, fields: dict[str, Any], now_ms: int) -> Peer | None:
    """Register (or re-register, by name in its circle) a peer, online; returns it, or None
    when its state forbids the move (PEER_TRANSITIONS)."""
    circle, name = fields["circle"], fields["name"]
    stored = {
        k: json.dumps(v) if k in FIELDS_JSON else ("" if v is None else v)
        for k, v in fields.items()
    }
    stored.update(status=PEER_INITIAL, last_seen=now_ms)
    peer_id = scripts(r).register_peer(
        keys=[
            keys.peer_name(circle, name),
            keys.PEERS,
            keys.peers_named(name),
            keys.peer_pane(fields["pane_id"]) if fields.get("pane_id") else "",
            keys.peers_in_circle(circle),
            keys.peers_in_state(PEER_INITIAL),
        ],
        args=[
            _PREFIXES,
            fields.get("peer_id") or new_id(circle),
            now_ms,
            json.dumps(stored),
            json.dumps(allowed_from(PEER_TRANSITIONS, PEER_INITIAL)),
        ],
    )
    return get(r, peer_id) if peer_id else None


def _load(raw: dict[str, str]) -> Peer:
    peer: Peer = {k: (v if v != "" else None) for k, v in raw.items()}
    for k in FIELDS_JSON:
        peer[k] = json.loads(raw[k]) if raw.get(k) else {}
    return peer


def get(r: redis.Redis, peer_id: str) -> Peer | None:
    raw = store.hgetall(r, keys.peer(peer_id))
    return _load(raw) if raw else None


def _get_many(r: redis.Redis, peer_ids: list[str]) -> list[Peer]:
    """The known peers among `peer_ids`, in that order."""
    raws = store.hgetall_many(r, [keys.peer(peer_id) for peer_id in peer_ids])
    return [_load(raw) for raw in raws if raw]


def resolve(r: redis.Redis, ident: str, circle: str | None = None) -> Peer | list[Peer] | None:
    """A peer by id or name. A name found in several circles (no circle given) gives the list
    of candidates; unknown gives None."""
    if ident.startswith("repow-"):
        return get(r, ident)
    if circle:
        peer_id = store.get(r, keys.peer_name(circle, ident))
        return get(r, peer_id) if peer_id else None
    found = _get_many(r, sorted(store.smembers(r, keys.peers_named(ident))))
    if not found:
        return None
    return found[0] if len(found) == 1 else found


def by_pane(r: redis.Redis, pane_id: str) -> Peer | None:
    """The peer last registered on a tmux pane."""
    peer_id = store.get(r, keys.peer_pane(pane_id))
    return get(r, peer_id) if peer_id else None


def list_all(r: redis.Redis, **filters: str | None) -> list[Peer]:
    """The peers whose fields equal every given filter (None: any), in registration order.
    Only the peers in the status and circle indexes of the filters are read."""
    indexes = [_INDEXED[k](v) for k, v in filters.items() if k in _INDEXED and v is not None]
    if indexes:
        found = _get_many(r, list(cast(set[str], r.sinter(indexes))))
        # As the peers ZSET orders them: by registration time, then by id.
        found.sort(key=lambda p: (int(p.get("registered_at") or 0), p["peer_id"]))
    else:
        found = _get_many(r, store.zrange(r, keys.PEERS))
    # Every filter again, indexed ones too: an index entry may be older than the record.
    return [p for p in found if all(v is None or p.get(k) == v for k, v in filters.items())]


def set_status(r: redis.Redis, peer_id: str, status: PeerState, now_ms: int) -> bool:
    """Set a known peer's status; False (and nothing written) for an unknown peer or a move
    PEER_TRANSITIONS forbids."""
    done = scripts(r).set_peer_status(
        keys=[keys.peer(peer_id), keys.peers_in_state(status)],
        args=[
            keys.PEERS_IN_STATE_PREFIX,
            peer_id,
            status,
            json.dumps(allowed_from(PEER_TRANSITIONS, status)),
            now_ms,
        ],
    )
    return int(done) == 1


def find_online(
    r: redis.Redis, *, path: str | None, backend: str | None, circle: str
) -> Peer | None:
    """An online peer working in `path` with `backend` in `circle` (for unassigned persistent
    jobs)."""
    if not path:
        return None
    found = list_all(r, status=PeerState.ONLINE, circle=circle, backend=backend, path=path)
    return found[0] if found else None
