"""How the peer routes read peers, as repowire 0.17 shows them: the status a peer is shown
with, its open inbound asks counted, the list's filters, a circle's orchestrator."""

from __future__ import annotations

import os

import redis

from dispatchyard.state import connections, keys
from dispatchyard.state.models import PEER_CONNECTED, PeerState
from dispatchyard.state.peers import (
    CROSS_CIRCLE_ROLES,
    Peer,
    by_pane,
    list_all,
    resolve,
)

HEARTBEAT_TOLERANCE_S = 60  # two heartbeat intervals of 30 s: an orchestrator's staleness
DESCRIPTION_TTL_S = 900  # a description older than this reads as "" (description_ttl_seconds)


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
