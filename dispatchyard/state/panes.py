"""Which tmux panes a live peer holds, and adopting an orphan pane as a new peer (the /panes routes,
docs/api.md).

A pane is bound while the pane index names a peer that still records that pane, is not
retired, and is held by a live WebSocket. A peer that is only on record (its socket ended, or
its shim process died) does not keep its pane: tmux reuses pane ids after a server restart, so
a stale binding would hide real orphans forever.

Adopting registers a new peer on the pane in one transaction with its checks: the pane index,
the candidate names' indexes and the bound peer's connection key are WATCHed, and the register
script runs inside MULTI, so two links racing for one pane, or for one name, cannot both win.
A link never takes over an existing peer (not even an offline one), so rolling it back only
ever deletes what it created.
"""

from __future__ import annotations

import json
from typing import Any, cast

import redis

from dispatchyard.state import errors, keys, store
from dispatchyard.state.errors import Conflict
from dispatchyard.state.models import PEER_CONNECTED, PeerState
from dispatchyard.state.peers import FIELDS_JSON, new_id
from dispatchyard.state.scripts import scripts
from dispatchyard.state.store import Pipeline, Redis


class PaneBound(Conflict):
    """A live peer holds the pane already (`holder`, its id)."""

    def __init__(self, pane_id: str, holder: str) -> None:
        super().__init__(f"Pane {pane_id} is already linked to {holder}")
        self.holder = holder


class NameTaken(Conflict):
    """Every candidate name is taken in the circle (`name`, the last one tried)."""

    def __init__(self, name: str, circle: str) -> None:
        super().__init__(f"A peer named {name} already exists in circle {circle}.")
        self.name = name


# WATCH conflicts mean another registration touched the same pane or name meanwhile; after
# this many the caller is told to retry instead of spinning.
ATTEMPTS = 5


def _holds(pane_id: str, record: list[str | None], live: bool) -> bool:
    pane, status = record
    return live and pane == pane_id and status is not None and status != PeerState.RETIRED


def bound(r: Redis, pane_ids: list[str]) -> dict[str, str]:
    """The panes among `pane_ids` a live peer holds -> that peer's id (two round trips)."""
    if not pane_ids:
        return {}
    pipe = r.pipeline(transaction=False)
    for pane_id in pane_ids:
        pipe.get(keys.peer_pane(pane_id))
    named = [
        (pane_id, peer_id)
        for pane_id, peer_id in zip(pane_ids, cast(list[str | None], pipe.execute()), strict=True)
        if peer_id
    ]
    if not named:
        return {}
    pipe = r.pipeline(transaction=False)
    for _, peer_id in named:
        pipe.hmget(keys.peer(peer_id), ["pane_id", "status"])
        pipe.exists(keys.peer_ws(peer_id))
    out = pipe.execute()
    return {
        pane_id: peer_id
        for i, (pane_id, peer_id) in enumerate(named)
        if _holds(pane_id, out[2 * i], bool(out[2 * i + 1]))
    }


def _holder(pipe: Pipeline, pane_id: str) -> str | None:
    """Inside a WATCHing pipeline: the live peer holding the pane, its keys now WATCHed too."""
    peer_id = store.get(pipe, keys.peer_pane(pane_id))
    if not peer_id:
        return None
    store.watch(pipe, keys.peer(peer_id), keys.peer_ws(peer_id))
    record = cast(list[str | None], pipe.hmget(keys.peer(peer_id), ["pane_id", "status"]))
    live = bool(pipe.exists(keys.peer_ws(peer_id)))
    return peer_id if _holds(pane_id, record, live) else None


def adopt(r: Redis, pane_id: str, fields: dict[str, Any], names: list[str], now_ms: int) -> str:
    """Register a new peer on a pane no live peer holds, under the first of `names` that no
    peer in its circle has; the new peer's id, with `fields["name"]` set to the name taken.
    PaneBound, NameTaken, or Conflict when the indexes kept changing under us."""
    circle = fields["circle"]
    pane_key = keys.peer_pane(pane_id)
    with r.pipeline() as pipe:
        for _ in range(ATTEMPTS):
            try:
                store.watch(pipe, pane_key)
                holder = _holder(pipe, pane_id)
                if holder is not None:
                    raise PaneBound(pane_id, holder)
                name = None
                for candidate in names:
                    store.watch(pipe, keys.peer_name(circle, candidate))
                    if store.get(pipe, keys.peer_name(circle, candidate)) is None:
                        name = candidate
                        break
                if name is None:
                    raise NameTaken(names[-1], circle)
                peer_id = new_id(circle)
                stored = {
                    k: json.dumps(v) if k in FIELDS_JSON else ("" if v is None else v)
                    for k, v in {**fields, "name": name, "pane_id": pane_id}.items()
                }
                stored["last_seen"] = now_ms
                pipe.multi()
                scripts(r).register_peer(
                    keys=[
                        keys.peer_name(circle, name),
                        keys.PEERS,
                        keys.peers_named(name),
                        pane_key,
                        keys.peers_in_circle(circle),
                    ],
                    args=[peer_id, now_ms, json.dumps(stored), "0"],
                    client=pipe,
                )
                pipe.execute()
            except redis.WatchError:
                continue
            except redis.ResponseError as e:
                # The name was free and the id fresh, so the script should not refuse; if it
                # ever does, nothing was written.
                errors.raise_refusal(str(e))
                raise
            fields["name"] = name
            return peer_id
    raise Conflict("Another registration changed this pane or name meanwhile; retry.")


def recorded_status(r: Redis, peer_id: str) -> str | None:
    """The status the peer's record claims, before its transport is consulted (state.peers
    shows a peer no socket holds as offline; the doctor needs the claim to contradict it)."""
    return store.hget(r, keys.peer(peer_id), "status")


def claims_connected(status: str | None) -> bool:
    return status in PEER_CONNECTED


def oldest_inbound(r: Redis, peer_id: str) -> str | None:
    """The correlation id of the oldest open ask addressed to the peer."""
    oldest = store.zrange(r, keys.asks_inbound(peer_id), 0, 0)
    return oldest[0] if oldest else None
