"""What `/metrics` (and `/health`) read from Redis at scrape time: gauges from the existing
indexes, Redis memory against its `maxmemory`, and the fire-lateness histogram, kept in Redis
so every process (shim or Celery worker) sees one.

Gauges are read in one pipeline from counters Redis already keeps (ZCARD/SCARD/LLEN of
indexes), never by scanning records. Fire lateness (how long after its `due_at` a fire acquired
its attempt) is folded from the events stream: each `job_state_changed` to `dispatching` is an
acquire; the fold reads the events after a shared cursor, looks up those jobs' documents, adds
the lateness of attempts fired because they were due to bucket counters in one hash, and moves
the cursor, all in one WATCH/MULTI on the cursor, so two scrapers never count an event twice.
An event trimmed from the stream before any scrape folded it is not counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

import redis

from dispatchyard.state import keys, store
from dispatchyard.state.clock import parse_ms
from dispatchyard.state.models import PeerState, SessionState
from dispatchyard.state.store import Redis

# Keys of this module (the fold's cursor and bucket counters).
LATENESS_HIST = "stats:fire_lateness"  # HASH bucket upper bound (or +Inf, sum, count) -> value
LATENESS_CURSOR = "stats:fire_lateness:cursor"  # last events-stream id folded

# Seconds; the histogram's upper bounds (+Inf implied).
LATENESS_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
FOLD_BATCH = 1000  # events read per fold step
FOLD_MAX_STEPS = 10  # per scrape; the rest waits for the next scrape
CONNECTED = (PeerState.ONLINE.value, PeerState.BUSY.value)


@dataclass
class Snapshot:
    queue_depth: dict[str, int] = field(default_factory=dict)  # queue name -> waiting items
    jobs_by_state: dict[str, int] = field(default_factory=dict)
    sessions_by_status: dict[str, int] = field(default_factory=dict)
    peers_by_status: dict[str, int] = field(default_factory=dict)
    websocket_connections: int = 0


def snapshot(
    r: Redis,
    *,
    job_states: tuple[str, ...],
    default_queue: str,
    fires_queue_prefix: str,
) -> Snapshot:
    """The gauges: two round trips (the machines with live workers, then one pipeline)."""
    machines = [str(m) for m in cast(list[Any], r.zrange(keys.MACHINES_ALIVE, 0, -1))]
    celery_queues = [default_queue, *(f"{fires_queue_prefix}{m}" for m in machines)]
    peer_states = tuple(s.value for s in PeerState)
    pipe = r.pipeline(transaction=False)
    pipe.zcard(keys.WORK_QUEUE)
    for queue in celery_queues:
        pipe.llen(queue)
    for state in job_states:
        pipe.zcard(keys.jobs_by_state(state))
    for state in peer_states:
        pipe.scard(keys.peers_in_state(state))
    pipe.hgetall(keys.SESSION_STATUS_COUNTS)
    *counts, by_status = pipe.execute()
    out = [int(v) for v in counts]
    work_queue, out = out[0], out[1:]
    snap = Snapshot()
    snap.queue_depth = {keys.WORK_QUEUE: work_queue}
    snap.queue_depth.update(zip(celery_queues, out[: len(celery_queues)], strict=True))
    out = out[len(celery_queues) :]
    snap.jobs_by_state = dict(zip(job_states, out[: len(job_states)], strict=True))
    out = out[len(job_states) :]
    snap.peers_by_status = dict(zip(peer_states, out, strict=True))
    # Kept by the session scripts as sessions move (state/keys.py SESSION_STATUS_COUNTS).
    # Every status, 0 included: a fresh deployment's dashboard has a line, not a hole.
    snap.sessions_by_status = dict.fromkeys((s.value for s in SessionState), 0)
    snap.sessions_by_status.update({status: int(n) for status, n in by_status.items()})
    snap.websocket_connections = sum(snap.peers_by_status[s] for s in CONNECTED)
    return snap


@dataclass
class Liveness:
    """Who is alive to do the work: Celery worker nodes seen lately, whether a beat holds the
    leader lock and how long ago beat's liveness tick last ran, and each daemon host's
    heartbeat age (active ones, and the ones the sweep marked offline)."""

    workers_online: int = 0
    beat_leader: bool = False
    beat_tick_age_s: float = float("inf")  # +Inf: beat never ticked
    hosts_by_status: dict[str, int] = field(default_factory=dict)
    host_heartbeat_age_s: dict[str, float] = field(default_factory=dict)  # host id -> seconds


def liveness(r: Redis, now_ms: int, *, worker_alive_within_ms: int) -> Liveness:
    """One pipeline: the live nodes, the beat lock and last tick, and the hosts' heartbeats
    (bounded by the fleet: one entry per registered host)."""
    pipe = r.pipeline(transaction=False)
    pipe.zcount(keys.NODES_ONLINE, now_ms - worker_alive_within_ms, "+inf")
    pipe.exists(keys.BEAT_LOCK)
    pipe.get(keys.BEAT_LAST_TICK)
    pipe.zrange(keys.HOST_HEARTBEATS, 0, -1, withscores=True)
    pipe.zrange(keys.HOSTS_OFFLINE, 0, -1, withscores=True)
    nodes, lock, tick, active, offline = pipe.execute()
    out = Liveness(workers_online=int(nodes), beat_leader=bool(lock))
    if tick:
        out.beat_tick_age_s = max(0, now_ms - int(tick)) / 1000
    out.hosts_by_status = {"active": len(active), "offline": len(offline)}
    for host_id, last_ms in [*active, *offline]:
        out.host_heartbeat_age_s[str(host_id)] = max(0.0, now_ms - float(last_ms)) / 1000
    return out


# /health says `degraded` once Redis uses this share of its `maxmemory`: with `noeviction`
# every write fails when it is full.
MEMORY_NEAR_FULL = 0.9


@dataclass(frozen=True)
class Memory:
    """Redis memory (`INFO memory`): bytes in use and the `maxmemory` limit (0: none)."""

    used: int
    limit: int

    @property
    def ratio(self) -> float | None:
        """`used / limit`, or None without a limit."""
        return self.used / self.limit if self.limit else None

    @property
    def near_full(self) -> bool:
        return self.ratio is not None and self.ratio >= MEMORY_NEAR_FULL


def memory(r: Redis) -> Memory:
    info = r.info("memory")
    return Memory(int(info.get("used_memory", 0)), int(info.get("maxmemory", 0)))


def _bucket(seconds: float) -> str:
    for bound in LATENESS_BUCKETS:
        if seconds <= bound:
            return str(float(bound))
    return "+Inf"


def _lateness_s(doc: dict[str, Any], acquired_at: str) -> float | None:
    """Seconds from `due_at` to the attempt that acquired at `acquired_at`, when it was a fire
    because the job was due; None otherwise."""
    due = parse_ms(doc.get("due_at"))
    at = parse_ms(acquired_at)
    if due is None or at is None:
        return None
    for attempt in (doc.get("runner") or {}).get("attempts") or []:
        if attempt.get("started_at") == acquired_at and attempt.get("fire") == "due":
            return max(0, at - due) / 1000
    return None


def _fold_step(r: Redis) -> int:
    """Fold one batch; the number of events read (0: caught up or lost a race)."""
    with r.pipeline() as pipe:
        try:
            store.watch(pipe, LATENESS_CURSOR)
            cursor = cast(str | None, pipe.get(LATENESS_CURSOR))
            start = f"({cursor}" if cursor else "-"
            rows = cast(
                list[tuple[str, dict[str, str]]],
                pipe.xrange(keys.EVENTS, min=start, max="+", count=FOLD_BATCH),
            )
            if not rows:
                return 0
            acquires = [
                (f["job_id"], f.get("at", ""))
                for _, f in rows
                if f.get("type") == "job_state_changed" and f.get("state") == "dispatching"
            ]
            counts: dict[str, int] = {}
            total = 0.0
            if acquires:
                raw = cast(
                    list[str | None], pipe.hmget(keys.JOB_DOCS, [job for job, _ in acquires])
                )
                for (_, at), text in zip(acquires, raw, strict=True):
                    late = _lateness_s(json.loads(text), at) if text else None
                    if late is not None:
                        bucket = _bucket(late)
                        counts[bucket] = counts.get(bucket, 0) + 1
                        total += late
            tx = pipe
            tx.multi()
            for bucket, n in counts.items():
                tx.hincrby(LATENESS_HIST, bucket, n)
            if counts:
                tx.hincrby(LATENESS_HIST, "count", sum(counts.values()))
                tx.hincrbyfloat(LATENESS_HIST, "sum", total)
            tx.set(LATENESS_CURSOR, rows[-1][0])
            tx.execute()
            return len(rows)
        except redis.WatchError:
            return 0  # another scraper folded this batch


def fold_lateness(r: Redis) -> None:
    """Fold the acquires the events stream gained since the last fold (bounded per call)."""
    for _ in range(FOLD_MAX_STEPS):
        if _fold_step(r) < FOLD_BATCH:
            return


def lateness(r: Redis) -> tuple[list[tuple[str, int]], int, float]:
    """The histogram: cumulative (upper bound, count) pairs ending with +Inf, count, sum."""
    raw = cast(dict[str, str], r.hgetall(LATENESS_HIST))
    buckets: list[tuple[str, int]] = []
    running = 0
    for bound in (*(str(float(b)) for b in LATENESS_BUCKETS), "+Inf"):
        running += int(raw.get(bound, 0))
        buckets.append((bound, running))
    return buckets, int(raw.get("count", 0)), float(raw.get("sum", 0.0))
