"""Daemon hosts, which the platform API calls "workers": registration, runtime-token
bookkeeping, deregistration, listing.

A host's lifecycle (`HostState`) moves only through `HOST_TRANSITIONS`, checked by the script
that writes the move.
"""

from __future__ import annotations

import json

import redis

from dispatchyard.state import keys, store
from dispatchyard.state.errors import NotFound
from dispatchyard.state.models import HOST_INITIAL, HostState
from dispatchyard.state.orgs import new_id
from dispatchyard.state.scripts import scripts

# A host's hash as stored (every value a string).
Record = dict[str, str]


def register(
    r: redis.Redis,
    org_id: str,
    *,
    hostname: str,
    capacity: int,
    version: str | None,
    projects: str | list[str],
    machine_id: str | None,
    region: str | None,
    reg_key_id: str,
    now_ms: int,
) -> Record:
    """Register (or re-register, by machineId) a host; returns its record. Conflict when its
    state forbids registering it again (HOST_TRANSITIONS)."""
    fields = {
        "orgId": org_id,
        "hostname": hostname,
        "capacity": capacity,
        "version": version or "",
        "projects": json.dumps(projects),
        "machineId": machine_id or "",
        "region": region or "",
        "regKeyId": reg_key_id,
        "lastHeartbeat": now_ms,
        "status": HOST_INITIAL,
    }
    machine_key = keys.host_machine(org_id, machine_id) if machine_id else ""
    host_id = scripts(r).register_host(
        keys=[machine_key, keys.org_hosts(org_id), keys.HOST_HEARTBEATS],
        args=[new_id("wkr"), now_ms, json.dumps(fields)],
    )
    return store.hgetall(r, keys.host(host_id))


def get(r: redis.Redis, host_id: str, org_id: str | None = None) -> Record | None:
    """The host record; None if unknown, deregistered, or (given `org_id`) another org's."""
    record = store.hgetall(r, keys.host(host_id))
    if not record or record.get("status") == HostState.DEREGISTERED:
        return None
    if org_id is not None and record.get("orgId") != org_id:
        return None
    return record


def projects_of(record: Record) -> str | list[str]:
    """The projects a host serves: "all", or a list of project ids."""
    projects: str | list[str] = json.loads(record.get("projects") or '"all"')
    return projects


def track_jti(r: redis.Redis, host_id: str, jti: str, exp_ms: int, now_ms: int) -> None:
    """Remember a minted token so deregistration can revoke it."""
    pipe = r.pipeline(transaction=True)
    pipe.zadd(keys.host_jtis(host_id), {jti: exp_ms})
    pipe.zremrangebyscore(keys.host_jtis(host_id), "-inf", now_ms - 3_600_000)
    pipe.execute()


def is_revoked(r: redis.Redis, jti: str) -> bool:
    return bool(r.exists(keys.jwt_revoked(jti)))


def deregister(r: redis.Redis, host_id: str, now_ms: int, leeway_s: int) -> list[str]:
    """Requeue its claimed-not-running sessions and revoke its tokens; the requeued session
    ids. NotFound if unknown or already deregistered (nothing written)."""
    org_id = store.hget(r, keys.host(host_id), "orgId")
    if org_id is None:
        raise NotFound("Worker not found")
    moved = scripts(r).deregister_host(
        keys=[
            keys.host(host_id),
            keys.host_jtis(host_id),
            keys.org_hosts(org_id),
            keys.HOST_HEARTBEATS,
        ],
        args=[host_id, now_ms, leeway_s, HostState.DEREGISTERED],
    )
    return [str(s) for s in moved]


def list_hosts(r: redis.Redis, org_id: str) -> list[dict[str, str | int]]:
    """The org's registered hosts, oldest first, each with `activeSessions` (its claimed,
    running and finalizing sessions)."""
    ids = store.zrange(r, keys.org_hosts(org_id))
    records = store.hgetall_many(r, [keys.host(host_id) for host_id in ids])
    pipe = r.pipeline(transaction=False)
    for host_id in ids:
        pipe.scard(keys.host_sessions(host_id))
    active = pipe.execute() if ids else []
    hosts: list[dict[str, str | int]] = []
    for record, count in zip(records, active, strict=True):
        if record and record.get("status") != HostState.DEREGISTERED:
            hosts.append({**record, "activeSessions": count})
    return hosts
