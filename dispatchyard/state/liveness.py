"""Liveness of the Celery side: which worker nodes (and so which machines) are alive, and when
beat's liveness tick last ran. The scheduler sends a fire to `fires.<machine>` only when that
machine has a live node; /health reports both."""

from __future__ import annotations

from dispatchyard.state import keys, store
from dispatchyard.state.store import Redis

ALIVE_WITHIN_MS = 15_000


def node_seen(r: Redis, machine: str, node: str, now_ms: int) -> None:
    """A worker node says it is alive (every few seconds, from its bootstep timer)."""
    pipe = r.pipeline(transaction=True)
    pipe.zadd(keys.MACHINES_ALIVE, {machine: now_ms})
    pipe.zadd(keys.NODES_ONLINE, {node: now_ms})
    pipe.execute()


def machine_alive(r: Redis, machine: str, now_ms: int) -> bool:
    seen = store.zscore(r, keys.MACHINES_ALIVE, machine)
    return seen is not None and now_ms - seen <= ALIVE_WITHIN_MS


def nodes_online(r: Redis, now_ms: int) -> int:
    return int(r.zcount(keys.NODES_ONLINE, now_ms - ALIVE_WITHIN_MS, "+inf"))


def beat_ticked(r: Redis, now_ms: int) -> None:
    r.set(keys.BEAT_LAST_TICK, now_ms)


def last_beat_tick(r: Redis) -> int | None:
    value = store.get(r, keys.BEAT_LAST_TICK)
    return int(value) if value else None
