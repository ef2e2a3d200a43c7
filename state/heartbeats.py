"""A host's heartbeat: its report, its mutation acks and its deliveries, in one script."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import redis

from state import keys
from state.mutations import P
from state.scripts import scripts

REVOKED = "revoked"


@dataclass
class HeartbeatResult:
    pending_work_count: int
    host_status: dict[str, Any]
    allowlist_stale: bool
    mutations: list[dict[str, Any]] = field(default_factory=list)


def heartbeat(
    r: redis.Redis,
    worker_id: str,
    *,
    org_id: str,
    revoked_key: str = "",
    fields: dict[str, Any],
    applied: list[str],
    failures: list[dict[str, str]],
    allowlist_hash: str | None,
    allowlist: list[dict] | None,
    now_ms: int,
    redeliver_after_ms: int,
    max_deliveries: int,
) -> HeartbeatResult | str | None:
    """None for an unknown (or deregistered, or another org's) worker; REVOKED when
    `revoked_key` (the caller's token revocation key) exists."""
    out = scripts(r).heartbeat(
        keys=[keys.worker(worker_id), keys.host_open_mutations(worker_id), keys.WORKER_HEARTBEATS],
        args=[
            P,
            now_ms,
            redeliver_after_ms,
            max_deliveries,
            json.dumps(fields),
            json.dumps(applied),
            json.dumps(failures),
            allowlist_hash or "",
            json.dumps(allowlist) if allowlist is not None else "",
            org_id,
            revoked_key,
        ],
    )
    if out == [-1]:
        return None
    if out == [-2]:
        return REVOKED
    count, status, action, candidates, stale, *flat = out
    host: dict[str, Any] = {"status": status}
    if action:
        host["recommendedAction"] = action
    if candidates:
        host["candidatePoolIds"] = json.loads(candidates)
    mutations = [
        {
            "id": flat[i],
            "op": flat[i + 1],
            "params": json.loads(flat[i + 2]),
            "requestedAt": int(flat[i + 3]),
            "requestedBy": flat[i + 4],
        }
        for i in range(0, len(flat), 5)
    ]
    return HeartbeatResult(int(count), host, bool(stale), mutations)


def sweep_offline(
    r: redis.Redis, now_ms: int, offline_after_ms: int, batch: int = 1000
) -> dict[str, list[str]]:
    """Mark silent hosts offline and requeue their claimed-not-running sessions.
    Returns {worker id: requeued session ids} for the hosts it marked."""
    from state.sessions import PREFIXES

    cutoff = now_ms - offline_after_ms
    marked: dict[str, list[str]] = {}
    silent: list[str] = r.zrangebyscore(  # type: ignore[assignment]
        keys.WORKER_HEARTBEATS, "-inf", cutoff, 0, batch
    )
    for worker_id in silent:
        moved = scripts(r).mark_offline(
            keys=[keys.worker(worker_id), keys.WORKER_HEARTBEATS],
            args=[PREFIXES, worker_id, now_ms, cutoff],
        )
        if moved != [-1]:
            marked[worker_id] = list(moved)
    return marked
