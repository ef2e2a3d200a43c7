"""A host's heartbeat: its report, its mutation acks and its deliveries, in one script."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import redis

from dispatchyard.state import keys, store
from dispatchyard.state.models import HostState
from dispatchyard.state.scripts import scripts


@dataclass
class HeartbeatResult:
    pending_work_count: int
    host_status: dict[str, Any]
    allowlist_stale: bool
    mutations: list[dict[str, Any]] = field(default_factory=list)


def heartbeat(
    r: redis.Redis,
    host_id: str,
    *,
    org_id: str,
    revoked_key: str = "",
    fields: dict[str, Any],
    applied: list[str],
    failures: list[dict[str, str]],
    allowlist_hash: str | None,
    allowlist: list[dict[str, Any]] | None,
    now_ms: int,
    redeliver_after_ms: int,
    max_deliveries: int,
) -> HeartbeatResult:
    """Record the heartbeat; what its answer needs. NotFound for an unknown (or deregistered,
    or another org's) host; Unauthorized when `revoked_key` (the caller's token revocation
    key) exists. A heartbeat makes the host active (an offline one is back)."""
    out = scripts(r).heartbeat(
        keys=[keys.host(host_id), keys.host_open_mutations(host_id), keys.HOST_HEARTBEATS],
        args=[
            now_ms,
            redeliver_after_ms,
            max_deliveries,
            json.dumps({**fields, "status": HostState.ACTIVE}),
            json.dumps(applied),
            json.dumps(failures),
            allowlist_hash or "",
            json.dumps(allowlist) if allowlist is not None else "",
            org_id,
            revoked_key,
        ],
    )
    count, status, action, candidates, stale, *flat = out
    host: dict[str, Any] = {"status": status}
    if action:
        host["recommendedAction"] = action
    if candidates:
        host["candidatePoolIds"] = candidate_pool_ids(candidates)
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


def candidate_pool_ids(stored: str) -> list[str]:
    """The stored `candidatePoolIds` as a list. The heartbeat script writes `[]` for none, but a
    record written before that fix holds cjson's `{}` for the empty list: it reads as []."""
    value = json.loads(stored)
    return [str(x) for x in value] if isinstance(value, list) else []


def sweep_offline(
    r: redis.Redis, now_ms: int, offline_after_ms: int, batch: int = 1000
) -> dict[str, list[str]]:
    """Mark silent hosts offline and requeue their claimed-not-running sessions.
    Returns {host id: requeued session ids} for the hosts it marked."""
    cutoff = now_ms - offline_after_ms
    marked: dict[str, list[str]] = {}
    for host_id in store.zrangebyscore(r, keys.HOST_HEARTBEATS, "-inf", cutoff, limit=batch):
        moved = scripts(r).mark_offline(
            keys=[keys.host(host_id), keys.HOST_HEARTBEATS],
            args=[host_id, now_ms, cutoff, HostState.OFFLINE],
        )
        if moved is not None:
            marked[host_id] = [str(s) for s in moved]
    return marked
