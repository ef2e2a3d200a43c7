"""Daemon config mutations: queued for one host, delivered on its heartbeat (`POST
/api/workers/{id}/heartbeat`, docs/api.md).

Every transition runs through the table `MUTATION_TRANSITIONS` inside one Lua script, and
appends an audit entry (`mutation:history:{id}`): who requested, each delivery, what the host
said, or who cancelled.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import redis

from dispatchyard.state import keys, store
from dispatchyard.state.errors import NotFound
from dispatchyard.state.models import MutationState
from dispatchyard.state.scripts import scripts


def new_id() -> str:
    return f"mut_{secrets.token_hex(12)}"


def enqueue(
    r: redis.Redis,
    *,
    org_id: str,
    host_id: str,
    op: str,
    params: dict[str, Any],
    requested_by: str,
    now_ms: int,
) -> dict[str, str]:
    """Queue a mutation; its record. NotFound when the host is unknown or another org's."""
    mutation_id = new_id()
    record = {
        "id": mutation_id,
        "orgId": org_id,
        "workerHostId": host_id,
        "op": op,
        "params": json.dumps(params),
        "status": MutationState.PENDING,
        "requestedBy": requested_by,
        "requestedAt": now_ms,
        "deliveryCount": 0,
    }
    scripts(r).enqueue_mutation(
        keys=[keys.host(host_id)], args=[mutation_id, now_ms, json.dumps(record)]
    )
    return get(r, org_id, mutation_id)


def cancel(r: redis.Redis, org_id: str, mutation_id: str, by: str, now_ms: int) -> None:
    """Cancel a pending mutation. NotFound (unknown, another org's); Conflict when it is no
    longer pending (its `reason` field: 'already_delivered', 'already_cancelled', ...)."""
    scripts(r).cancel_mutation(keys=[], args=[mutation_id, org_id, now_ms, by])


def get(r: redis.Redis, org_id: str, mutation_id: str) -> dict[str, str]:
    """The mutation's record. NotFound when unknown or another org's."""
    record = store.hgetall(r, keys.mutation(mutation_id))
    if not record or record.get("orgId") != org_id:
        raise NotFound("Mutation not found")
    return record


def history(r: redis.Redis, mutation_id: str) -> list[dict[str, Any]]:
    return [json.loads(e) for e in r.lrange(keys.mutation_history(mutation_id), 0, -1)]


def list_for(
    r: redis.Redis,
    org_id: str,
    *,
    host_id: str | None,
    status: str | None,
    limit: int,
) -> list[dict[str, str]]:
    """Newest first. A host's own index is read when a host is named (a host has few),
    else the org's index for that status: never more than `limit` records from an org index."""
    if host_id is not None:
        index = keys.host_mutations(host_id)
    else:
        index = keys.org_mutations_in(org_id, status) if status else keys.org_mutations(org_id)
    stop = -1 if (host_id and status) else limit - 1
    ids = [mutation_id for mutation_id, _ in store.zrevrange_scored(r, index, 0, stop)]
    out = []
    for record in store.hgetall_many(r, [keys.mutation(mutation_id) for mutation_id in ids]):
        if not record or record.get("orgId") != org_id:
            continue
        if status and record.get("status") != status:
            continue
        out.append(record)
        if len(out) >= limit:
            break
    return out


def sweep_stale(
    r: redis.Redis, now_ms: int, redeliver_after_ms: int, max_deliveries: int, batch: int = 1000
) -> int:
    """Fail in-flight mutations whose host let the windows of all their remaining deliveries
    pass without a heartbeat (sweep_mutation.lua); returns how many failed."""
    ids = store.zrangebyscore(
        r, keys.MUTATIONS_INFLIGHT, "-inf", now_ms - redeliver_after_ms, limit=batch
    )
    failed = 0
    for mutation_id in ids:
        failed += scripts(r).sweep_mutation(
            keys=[], args=[mutation_id, now_ms, redeliver_after_ms, max_deliveries]
        )
    return failed
