"""Which shim process holds each peer's live WebSocket, and handing frames to it.

A peer's connection key (`peer:ws:{id}`) names the shim process (its node id) holding the
socket and expires unless that process renews it, so a process that dies takes its peers
offline within the TTL. Any process (or a Celery worker) delivers a frame by publishing it on
the holder's channel in one script with reading who holds it; the holder writes it to the
socket. A peer's status follows: connecting makes it online, the socket's end offline.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, cast

from dispatchyard.state import keys, store
from dispatchyard.state.clock import iso
from dispatchyard.state.scripts import scripts
from dispatchyard.state.store import Redis

TRACE_TTL_S = 24 * 3600  # as state/traces.py keeps traces
# A holder renews every TTL/3; a dead one's peers go offline within this. The shim sets it from
# `peer_connection_ttl_s` when it builds its app (`configure`); every reader looks it up here.
TTL_MS = 30_000
# The shim process's own sockets (api_shim/hub.py): its node id and how to hand a message to
# one of them, so a frame for a peer held here skips the publish and the subscription. Kept
# with the pid that set it: a forked child holds no socket of its parent's.
_local: tuple[int, str, Callable[[dict[str, Any]], None]] | None = None


def configure(ttl_ms: int) -> None:
    """Set this process's connection TTL (the shim, from its settings, at start)."""
    global TTL_MS
    TTL_MS = ttl_ms


def hold_locally(node: str, deliver: Callable[[dict[str, Any]], None]) -> None:
    """This process holds sockets as `node`; `deliver(message)` hands one a message."""
    global _local
    _local = (os.getpid(), node, deliver)


def _own() -> tuple[str, Callable[[dict[str, Any]], None]] | None:
    if _local is None or _local[0] != os.getpid():
        return None
    return _local[1], _local[2]


def own_node() -> str:
    """The node id of the sockets this process holds ('' for none: a worker)."""
    own = _own()
    return own[0] if own else ""


def hand_over(peer_id: str, message: dict[str, Any]) -> None:
    """Hand a message to the peer's socket held by this process (a script found that this
    process holds it and published nothing)."""
    own = _own()
    if own is not None:
        own[1]({"peer_id": peer_id, **message})


def connect(r: Redis, peer_id: str, node: str, now_ms: int) -> str:
    """Record that `node` holds the peer's socket and bring it online; the node that held it
    before ('' for none). NotFound; Conflict (nothing written) when PEER_TRANSITIONS forbids
    it (a retired peer: its `state` is 'retired')."""
    previous: str = scripts(r).connect_peer(
        keys=[keys.peer(peer_id), keys.peer_ws(peer_id)], args=[peer_id, node, TTL_MS, now_ms]
    )
    return previous


def disconnect(r: Redis, peer_id: str, node: str, now_ms: int) -> bool:
    """The socket `node` held ended: the peer goes offline unless another socket holds it.
    True when it went offline."""
    out = scripts(r).disconnect_peer(
        keys=[keys.peer(peer_id), keys.peer_ws(peer_id)], args=[peer_id, node, now_ms]
    )
    return int(out) == 1


def renew(r: Redis, node: str, peer_ids: list[str]) -> list[str]:
    """Renew `node`'s connection keys; the peers it no longer holds (superseded)."""
    if not peer_ids:
        return []
    lost = scripts(r).renew_connections(
        keys=[keys.peer_ws(p) for p in peer_ids], args=[node, TTL_MS]
    )
    return [peer_ids[int(i) - 1] for i in lost]


def holder(r: Redis, peer_id: str) -> str | None:
    return store.get(r, keys.peer_ws(peer_id))


def live(r: Redis, peer_ids: list[str]) -> list[bool]:
    """Whether a socket holds each peer, in one round trip."""
    if not peer_ids:
        return []
    pipe = r.pipeline(transaction=False)
    for peer_id in peer_ids:
        pipe.exists(keys.peer_ws(peer_id))
    return [bool(n) for n in cast(list[int], pipe.execute())]


def send(
    r: Redis,
    peer_id: str,
    message: dict[str, Any],
    now_ms: int,
    trace_id: str | None = None,
) -> bool:
    """Hand `message` ({"frame": {...}} or {"close": {...}}) to the process holding the peer's
    socket, tracing `routed` (or `no_connection`) under `trace_id` in the same step. False when
    no live socket holds it; a holder found dead is disconnected."""
    full = {"peer_id": peer_id, **message}
    body = json.dumps(full, separators=(",", ":"))
    own = _own()

    def entry(stage: str, ok: bool) -> str:
        status = "ok" if ok else "fail"
        fields = {"stage": stage, "status": status, "peer_id": peer_id, "ts": iso(now_ms)}
        return json.dumps({**fields, "from_peer_id": None, "detail": {}})

    out = scripts(r).deliver_frame(
        keys=[keys.peer_ws(peer_id), keys.trace(trace_id) if trace_id else ""],
        args=[
            body,
            entry("routed", True),
            entry("no_connection", False),
            TRACE_TTL_S,
            own[0] if own else "",
        ],
    )
    received, node = int(out[0]), str(out[1])
    if received == 2 and own is not None:
        own[1](full)
    elif received == 0:
        disconnect(r, peer_id, node, now_ms)
    return received > 0


def close_on(r: Redis, node: str, peer_id: str, code: int, reason: str) -> None:
    """Ask shim process `node` to close the socket it holds for the peer (a newer socket of
    the same peer took over elsewhere)."""
    body = {"peer_id": peer_id, "close": {"code": code, "reason": reason}}
    r.publish(keys.node_channel(node), json.dumps(body, separators=(",", ":")))
