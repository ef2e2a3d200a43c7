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
import os
import secrets
from typing import Any, cast

import redis

from state import asks, connections, events, keys, store
from state.clock import iso
from state.documents import Refused
from state.models import PEER_CONNECTED, PEER_TRANSITIONS, PeerState, allowed_from
from state.scripts import scripts

FIELDS_JSON = ("metadata",)
# ARGV 1 of register_peer.lua, serialized once.
_PREFIXES = json.dumps(keys.PEER_SCRIPT_PREFIXES)
# The filters of `list_all` that have an index, and the index of a value.
_INDEXED = {"status": keys.peers_in_state, "circle": keys.peers_in_circle}
_TABLE = json.dumps({state: sorted(targets) for state, targets in PEER_TRANSITIONS.items()})

Peer = dict[str, Any]


def new_id(circle: str) -> str:
    return f"repow-{circle}-{secrets.token_hex(4)}"


def register(r: redis.Redis, fields: dict[str, Any], now_ms: int, *, revive: bool = False) -> Peer:
    """Register (or re-register, by name in its circle) a peer; online only while a live
    socket holds it. Raises Refused('peer_retired') for a retired peer unless `revive` (its
    agent process is alive), Refused('refused') when PEER_TRANSITIONS forbids the move."""
    circle, name = fields["circle"], fields["name"]
    stored = {
        k: json.dumps(v) if k in FIELDS_JSON else ("" if v is None else v)
        for k, v in fields.items()
    }
    stored["last_seen"] = now_ms
    outcome, peer_id = scripts(r).register_peer(
        keys=[
            keys.peer_name(circle, name),
            keys.PEERS,
            keys.peers_named(name),
            keys.peer_pane(fields["pane_id"]) if fields.get("pane_id") else "",
            keys.peers_in_circle(circle),
        ],
        args=[
            _PREFIXES,
            fields.get("peer_id") or new_id(circle),
            now_ms,
            json.dumps(stored),
            _TABLE,
            "1" if revive else "0",
        ],
    )
    if outcome == "retired":
        raise Refused("peer_retired", PeerState.RETIRED)
    if outcome != "ok":
        raise Refused("refused")
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


# --- The peer routes (daemon.md §4), with repowire 0.17's defaults --------------------------

DESCRIPTION_TTL_S = 900  # a description older than this reads as "" (description_ttl_seconds)
RETIRED_KEPT_S = 72 * 3600  # a retirement older than this no longer refuses (_RETIRED_TTL)
HEARTBEAT_TOLERANCE_S = 60  # two heartbeat intervals of 30 s: an orchestrator's staleness
CROSS_CIRCLE_ROLES = ("service", "orchestrator", "human")
# How an open query (a blocking `/query` ask) to a peer marked offline is closed.
QUERY_CLOSE_REASON = "peer_disconnected"
RETIRED_FRAME = {"type": "error", "code": "peer_retired", "error": "Peer is retired"}
RETIRED_CLOSE = {"code": 4004, "reason": "peer retired", "frame": RETIRED_FRAME}
_INDEX_PREFIXES = json.dumps(keys.PEER_INDEX_PREFIXES)


class PeerRetired(Refused):
    """A registration of a retired identity whose agent process is not alive."""

    def __init__(self, peer_id: str) -> None:
        super().__init__("peer_retired", PeerState.RETIRED)
        self.peer_id = peer_id


def register_or_revive(
    r: redis.Redis, fields: dict[str, Any], now_ms: int, *, agent_alive: bool
) -> Peer:
    """Register; a retired identity comes back when its agent process is alive, or when it was
    retired more than RETIRED_KEPT_S ago (repowire forgets a retirement then: any orphaned hook
    is long gone). Raises PeerRetired otherwise."""
    try:
        return register(r, fields, now_ms, revive=agent_alive)
    except Refused as refused:
        if refused.reason != "peer_retired":
            raise
    # The script refused the peer its name names in the circle, else the id given.
    found = resolve(r, fields["name"], fields["circle"])
    if not isinstance(found, dict) and fields.get("peer_id"):
        found = get(r, fields["peer_id"])
    if not isinstance(found, dict):
        raise PeerRetired(fields.get("peer_id") or "")
    retired_ms = int(found.get("retired_at") or found.get("last_seen") or now_ms)
    if now_ms - retired_ms > RETIRED_KEPT_S * 1000:
        return register(r, fields, now_ms, revive=True)
    raise PeerRetired(found["peer_id"])


def wire_status(peer: Peer) -> str:
    """The status a peer is shown with (repowire's three): retired is an offline."""
    status = peer.get("status") or PeerState.OFFLINE
    return PeerState.OFFLINE if status == PeerState.RETIRED else str(status)


def with_inbound(r: redis.Redis, found: list[Peer]) -> list[Peer]:
    """Add each peer's open inbound asks: `pending_ask_count` and `oldest_pending_ms` (when the
    oldest was opened), for all the peers in one round trip."""
    if not found:
        return found
    pipe = r.pipeline(transaction=False)
    for peer in found:
        pipe.zcard(keys.asks_inbound(peer["peer_id"]))
        pipe.zrange(keys.asks_inbound(peer["peer_id"]), 0, 0, withscores=True)
    out = pipe.execute()
    for i, peer in enumerate(found):
        oldest = out[2 * i + 1]
        peer["pending_ask_count"] = int(out[2 * i])
        peer["oldest_pending_ms"] = float(oldest[0][1]) if oldest else None
    return found


def lookup(r: redis.Redis, ident: str, circle: str | None = None) -> Peer | list[Peer] | None:
    """`resolve`, with the inbound counts of the peer found."""
    found = resolve(r, ident, circle)
    if isinstance(found, dict):
        with_inbound(r, [found])
    return found


def lookup_pane(r: redis.Redis, pane_id: str) -> Peer | None:
    """`by_pane`, with the inbound counts of the peer found."""
    found = by_pane(r, pane_id)
    if found is not None:
        with_inbound(r, [found])
    return found


def _same_path(a: str, b: str) -> bool:
    # As repowire: two spellings of one directory (a symlink, a trailing slash) match.
    return a == b or os.path.realpath(a) == os.path.realpath(b)


def search(
    r: redis.Redis,
    *,
    status: str | None = None,
    path: str | None = None,
    backend: str | None = None,
    circle: str | None = None,
) -> list[Peer]:
    """The peers `GET /peers` lists, as repowire filters them: `online` is online or busy,
    `offline` includes retired peers; a path matches as given or once symlinks are resolved; a
    circle (but `*`) also shows the peers whose role crosses circles. With inbound counts."""
    if status in (PeerState.ONLINE, PeerState.BUSY):
        # Only connected peers can match: read them from the status indexes.
        wanted = [PeerState.BUSY] if status == PeerState.BUSY else sorted(PEER_CONNECTED)
        found = [p for s in wanted for p in list_all(r, status=s, backend=backend)]
        found.sort(key=lambda p: (int(p.get("registered_at") or 0), p["peer_id"]))
    else:
        found = list_all(r, backend=backend)
        if status is not None:
            found = [p for p in found if wire_status(p) == status]
    if path:
        found = [p for p in found if p.get("path") and _same_path(p["path"], path)]
    if circle is not None and circle != "*":
        found = [
            p for p in found if p.get("circle") == circle or p.get("role") in CROSS_CIRCLE_ROLES
        ]
    return with_inbound(r, found)


def _cancel_queries(r: redis.Redis, peer_id: str, now_ms: int) -> int:
    """Close the open queries to a peer that went offline (their waiters wake to the close);
    how many. Other asks stay open, as repowire keeps them."""
    waiting = store.zrange(r, keys.asks_inbound(peer_id))
    records = store.hgetall_many(r, [keys.ask(cid) for cid in waiting])
    cancelled = 0
    for cid, record in zip(waiting, records, strict=True):
        is_query = record.get("kind") == "query" and record.get("status") == "open"
        if is_query and asks.close(r, cid, now_ms, reason=QUERY_CLOSE_REASON) == "ok":
            cancelled += 1
    return cancelled


def mark_offline(
    r: redis.Redis,
    peer: Peer,
    now_ms: int,
    *,
    reason: str,
    source: str,
    detail: str | None,
    terminal: bool,
) -> tuple[str, int]:
    """Mark a peer offline, or retire it (`terminal`: its socket, if any, is sent the
    `peer_retired` error frame and closed with 4004); then close the open queries to it.
    ('ok' | 'unknown' | 'refused', queries cancelled)."""
    peer_id = peer["peer_id"]
    cause = {"offline_reason": reason, "offline_source": source, "offline_detail": detail or ""}
    close = json.dumps({"peer_id": peer_id, "close": RETIRED_CLOSE}, separators=(",", ":"))
    data = {
        "peer_id": peer_id,
        "display_name": peer["name"],
        "backend": peer.get("backend"),
        "path": peer.get("path"),
        "pane_id": peer.get("pane_id"),
        "new_status": PeerState.OFFLINE,
        "reason": reason,
        "source": source,
        "terminal": terminal,
    }
    if detail:
        data["detail"] = detail
    event = {"type": "peer_offline", "timestamp": iso(now_ms), "data": json.dumps(data)}
    out = scripts(r).peer_offline(
        keys=[keys.peer(peer_id), keys.peer_ws(peer_id), keys.EVENTS],
        args=[
            _INDEX_PREFIXES,
            peer_id,
            now_ms,
            "1" if terminal else "0",
            _TABLE,
            json.dumps(cause),
            close,
            json.dumps(event),
            events.MAXLEN,
        ],
    )
    outcome = str(out[0])
    if outcome != "ok":
        return outcome, 0
    return outcome, _cancel_queries(r, peer_id, now_ms)


def delete(r: redis.Redis, peer_id: str) -> bool:
    """Remove a peer and its index entries; False when it is unknown."""
    done = scripts(r).delete_peer(
        keys=[keys.peer(peer_id), keys.PEERS], args=[_INDEX_PREFIXES, peer_id]
    )
    return int(done) == 1


def move_circle(r: redis.Redis, peer_id: str, circle: str) -> str:
    """Move a peer to `circle`: 'ok', 'unknown', or 'taken' (a peer of its name is there)."""
    out = scripts(r).move_peer_circle(
        keys=[keys.peer(peer_id), keys.peers_in_circle(circle)],
        args=[_INDEX_PREFIXES, peer_id, circle],
    )
    return str(out)


def update(
    r: redis.Redis,
    peer_id: str,
    now_ms: int,
    *,
    fields: dict[str, str] | None = None,
    status: PeerState | None = None,
    metadata: dict[str, Any] | None = None,
    seen: bool = True,
) -> str:
    """Write `fields`, merge `metadata` into the peer's, and report `status`, in one
    transaction (WATCH/MULTI: the metadata merge and the PEER_TRANSITIONS check read what they
    replace). `seen` refreshes last_seen. 'ok', 'unknown', or 'refused' (nothing written) when
    the table forbids the status; a report never moves a retired peer (only a registration
    whose agent is alive does)."""
    key = keys.peer(peer_id)

    def txn(pipe: store.Pipeline) -> str:
        current = store.hmget(pipe, key, ["status", "metadata"])
        if current[0] is None:
            return "unknown"
        was = PeerState(current[0])
        if status is not None and (was == PeerState.RETIRED or status not in PEER_TRANSITIONS[was]):
            return "refused"
        changes: dict[str, str | int] = dict(fields or {})
        if metadata:
            changes["metadata"] = json.dumps({**json.loads(current[1] or "{}"), **metadata})
        if status is not None:
            changes["status"] = status
        if seen:
            changes["last_seen"] = now_ms
        pipe.multi()
        if changes:
            store.hset_fields(pipe, key, changes)
        if status is not None and status != was:
            pipe.srem(keys.peers_in_state(was), peer_id)
            pipe.sadd(keys.peers_in_state(status), peer_id)
        return "ok"

    outcome: str = store.transaction(r, txn, key)
    return outcome


def orchestrator(r: redis.Redis, circle: str, now_ms: int) -> Peer | None:
    """The live orchestrator of a circle: role orchestrator, held by a socket (online or busy)
    and seen within HEARTBEAT_TOLERANCE_S, the most recently seen of them. A held socket is
    seen at each renewal of its connection key, so `last_seen` is the later of the record's and
    the key's last renewal."""
    found = [
        p
        for p in list_all(r, circle=circle)
        if p.get("role") == "orchestrator" and p.get("status") in PEER_CONNECTED
    ]
    if not found:
        return None
    pipe = r.pipeline(transaction=False)
    for peer in found:
        pipe.pttl(keys.peer_ws(peer["peer_id"]))
    live = []
    for peer, ttl in zip(found, pipe.execute(), strict=True):
        renewed = now_ms - (connections.TTL_MS - int(ttl)) if int(ttl) > 0 else 0
        peer["last_seen"] = max(int(peer.get("last_seen") or 0), renewed)
        if now_ms - peer["last_seen"] <= HEARTBEAT_TOLERANCE_S * 1000:
            live.append(peer)
    return max(live, key=lambda p: int(p["last_seen"]), default=None)
