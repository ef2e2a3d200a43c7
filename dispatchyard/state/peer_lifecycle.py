"""Changes to a registered peer beyond its registration: retirement and revival, going
offline (closing its open queries), removal, a move to another circle, and session updates;
each one script or one transaction keeping every peer index in step."""

from __future__ import annotations

import json
from typing import Any

import redis

from dispatchyard.state import asks, events, keys, store
from dispatchyard.state.clock import iso
from dispatchyard.state.errors import Conflict, NotFound
from dispatchyard.state.models import PEER_TRANSITIONS, PeerState, may_move
from dispatchyard.state.peers import Peer, get, register, resolve
from dispatchyard.state.scripts import scripts

RETIRED_KEPT_S = 72 * 3600  # a retirement older than this no longer refuses (_RETIRED_TTL)
# How an open query (a blocking `/query` ask) to a peer marked offline is closed.
QUERY_CLOSE_REASON = "peer_disconnected"
RETIRED_FRAME = {"type": "error", "code": "peer_retired", "error": "Peer is retired"}
RETIRED_CLOSE = {"code": 4004, "reason": "peer retired", "frame": RETIRED_FRAME}


class PeerRetired(Conflict):
    """A registration of a retired identity whose agent process is not alive."""

    def __init__(self, peer_id: str) -> None:
        super().__init__("Peer is retired", state=PeerState.RETIRED)
        self.peer_id = peer_id


def register_or_revive(
    r: redis.Redis, fields: dict[str, Any], now_ms: int, *, agent_alive: bool
) -> Peer:
    """Register; a retired identity comes back when its agent process is alive, or when it was
    retired more than RETIRED_KEPT_S ago (repowire forgets a retirement then: any orphaned hook
    is long gone). Raises PeerRetired otherwise."""
    try:
        return register(r, fields, now_ms, revive=agent_alive)
    except Conflict as refused:
        if refused.state != PeerState.RETIRED:
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


def _cancel_queries(r: redis.Redis, peer_id: str, now_ms: int) -> int:
    """Close the open queries to a peer that went offline (their waiters wake to the close);
    how many. Other asks stay open, as repowire keeps them."""
    waiting = store.zrange(r, keys.asks_inbound(peer_id))
    records = store.hgetall_many(r, [keys.ask(cid) for cid in waiting])
    cancelled = 0
    for cid, record in zip(waiting, records, strict=True):
        is_query = record.get("kind") == "query" and record.get("status") == "open"
        if is_query and asks.close(r, cid, now_ms, reason=QUERY_CLOSE_REASON):
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
) -> int:
    """Mark a peer offline, or retire it (`terminal`: its socket, if any, is sent the
    `peer_retired` error frame and closed with 4004); then close the open queries to it; how
    many it closed. NotFound; Conflict when PEER_TRANSITIONS forbids the move."""
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
    scripts(r).peer_offline(
        keys=[keys.peer(peer_id), keys.peer_ws(peer_id), keys.EVENTS],
        args=[
            peer_id,
            now_ms,
            "1" if terminal else "0",
            json.dumps(cause),
            close,
            json.dumps(event),
            events.MAXLEN,
        ],
    )
    return _cancel_queries(r, peer_id, now_ms)


def delete(r: redis.Redis, peer_id: str) -> None:
    """Remove a peer and its index entries. NotFound when it is unknown."""
    scripts(r).delete_peer(keys=[keys.peer(peer_id), keys.PEERS], args=[peer_id])


def move_circle(r: redis.Redis, peer_id: str, circle: str) -> None:
    """Move a peer to `circle`. NotFound; Conflict when a peer of its name is there."""
    scripts(r).move_peer_circle(
        keys=[keys.peer(peer_id), keys.peers_in_circle(circle)], args=[peer_id, circle]
    )


def update(
    r: redis.Redis,
    peer_id: str,
    now_ms: int,
    *,
    fields: dict[str, str] | None = None,
    status: PeerState | None = None,
    metadata: dict[str, Any] | None = None,
    seen: bool = True,
) -> None:
    """Write `fields`, merge `metadata` into the peer's, and report `status`, in one
    transaction (WATCH/MULTI: the metadata merge and the PEER_TRANSITIONS check read what they
    replace). `seen` refreshes last_seen. NotFound; Conflict (nothing written) when the table
    forbids the status; a report never moves a retired peer (only a registration whose agent
    is alive does)."""
    key = keys.peer(peer_id)

    def txn(pipe: store.Pipeline) -> None:
        current = store.hmget(pipe, key, ["status", "metadata", "name"])
        if current[0] is None:
            raise NotFound(f"Peer not found: {peer_id}")
        was = PeerState(current[0])
        retired = was == PeerState.RETIRED
        if status is not None and (retired or not may_move(PEER_TRANSITIONS, was, status)):
            name = current[2] or peer_id
            message = f"Peer {name} cannot report that status from its current status"
            raise Conflict(message, state=was)
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

    store.transaction(r, txn, key)
