"""Daemon config mutations: queued for one host, delivered on its heartbeat (platform.md §4).

Every transition runs through the table `MUTATION_TRANSITIONS` inside one Lua script, and
appends an audit entry (`mutation:history:{id}`): who requested, each delivery, what the host
said, or who cancelled.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import redis

from state import keys
from state.models import MUTATION_TRANSITIONS
from state.scripts import scripts

P = json.dumps(
    {
        "mutation": keys.MUTATION_PREFIX,
        "history": keys.MUTATION_HISTORY_PREFIX,
        "open": keys.HOST_OPEN_MUTATIONS_PREFIX,
        "host_all": keys.host_mutations(""),
        "org_mutations": keys.ORG_MUTATIONS_PREFIX,
        "inflight": keys.MUTATIONS_INFLIGHT,
        "apikey": keys.apikey(""),
        "org_queue": keys.ORG_QUEUE_PREFIX,
        "project_queue": keys.PROJECT_QUEUE_PREFIX,
        "T": {state: sorted(targets) for state, targets in MUTATION_TRANSITIONS.items()},
    }
)


def new_id() -> str:
    return f"mut_{secrets.token_hex(12)}"


def enqueue(
    r: redis.Redis,
    *,
    org_id: str,
    worker_id: str,
    op: str,
    params: dict[str, Any],
    requested_by: str,
    now_ms: int,
) -> dict | None:
    """Queue a mutation; None when the host is unknown or another org's."""
    mutation_id = new_id()
    record = {
        "id": mutation_id,
        "orgId": org_id,
        "workerHostId": worker_id,
        "op": op,
        "params": json.dumps(params),
        "status": "pending",
        "requestedBy": requested_by,
        "requestedAt": now_ms,
        "deliveryCount": 0,
    }
    ok = scripts(r).enqueue_mutation(
        keys=[keys.worker(worker_id)], args=[P, mutation_id, now_ms, json.dumps(record)]
    )
    return get(r, org_id, mutation_id) if ok else None


def cancel(r: redis.Redis, org_id: str, mutation_id: str, by: str, now_ms: int) -> str:
    """'cancelled' | 'not_found' | 'already_delivered' | 'already_cancelled' | ..."""
    return scripts(r).cancel_mutation(keys=[], args=[P, mutation_id, org_id, now_ms, by])


def get(r: redis.Redis, org_id: str, mutation_id: str) -> dict | None:
    record = r.hgetall(keys.mutation(mutation_id))
    return record if record and record.get("orgId") == org_id else None


def history(r: redis.Redis, mutation_id: str) -> list[dict]:
    return [json.loads(e) for e in r.lrange(keys.mutation_history(mutation_id), 0, -1)]


def list_for(
    r: redis.Redis,
    org_id: str,
    *,
    worker_id: str | None,
    status: str | None,
    limit: int,
) -> list[dict]:
    """Newest first. A host's own index is read when a host is named (a host has few),
    else the org's index for that status: never more than `limit` records from an org index."""
    if worker_id is not None:
        index = keys.host_mutations(worker_id)
    else:
        index = keys.org_mutations(org_id, status)
    stop = -1 if (worker_id and status) else limit - 1
    ids: list[str] = r.zrevrange(index, 0, stop)  # type: ignore[assignment]
    pipe = r.pipeline(transaction=False)
    for mutation_id in ids:
        pipe.hgetall(keys.mutation(mutation_id))
    out = []
    for record in pipe.execute():
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
    """Fail in-flight mutations that used up their deliveries; returns how many failed."""
    ids = r.zrangebyscore(keys.MUTATIONS_INFLIGHT, "-inf", now_ms - redeliver_after_ms, 0, batch)
    failed = 0
    for mutation_id in ids:
        failed += scripts(r).sweep_mutation(
            keys=[], args=[P, mutation_id, now_ms, redeliver_after_ms, max_deliveries]
        )
    return failed
