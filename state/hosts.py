"""Worker hosts (daemons): registration, runtime-token bookkeeping, deregistration, listing."""

from __future__ import annotations

import json

import redis

from state import keys
from state.orgs import new_id
from state.scripts import scripts
from state.sessions import PREFIXES


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
) -> dict:
    """Register (or re-register, by machineId) a worker; returns its record."""
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
        "status": "active",
    }
    machine_key = keys.worker_machine(org_id, machine_id) if machine_id else ""
    worker_id = scripts(r).register_worker(
        keys=[machine_key, keys.org_workers(org_id), keys.WORKER_HEARTBEATS],
        args=[keys.worker(""), new_id("wkr"), now_ms, json.dumps(fields)],
    )
    return r.hgetall(keys.worker(worker_id))


def get(r: redis.Redis, worker_id: str, org_id: str | None = None) -> dict | None:
    """The worker record; None if unknown, deregistered, or (given `org_id`) another org's."""
    record = r.hgetall(keys.worker(worker_id))
    if not record or record.get("status") == "deregistered":
        return None
    if org_id is not None and record.get("orgId") != org_id:
        return None
    return record


def projects_of(record: dict) -> str | list[str]:
    return json.loads(record.get("projects") or '"all"')


def track_jti(r: redis.Redis, worker_id: str, jti: str, exp_ms: int, now_ms: int) -> None:
    """Remember a minted token so deregistration can revoke it."""
    pipe = r.pipeline(transaction=True)
    pipe.zadd(keys.worker_jtis(worker_id), {jti: exp_ms})
    pipe.zremrangebyscore(keys.worker_jtis(worker_id), "-inf", now_ms - 3_600_000)
    pipe.execute()


def is_revoked(r: redis.Redis, jti: str) -> bool:
    return bool(r.exists(keys.jwt_revoked(jti)))


def deregister(r: redis.Redis, worker_id: str, now_ms: int, leeway_s: int) -> list[str] | None:
    """Requeue its claimed-not-running sessions and revoke its tokens; None if unknown."""
    record: dict[str, str] = r.hgetall(keys.worker(worker_id))  # type: ignore[assignment]
    if not record:
        return None
    moved = scripts(r).deregister_worker(
        keys=[
            keys.worker(worker_id),
            keys.worker_jtis(worker_id),
            keys.org_workers(record["orgId"]),
            keys.WORKER_HEARTBEATS,
        ],
        args=[PREFIXES, worker_id, now_ms, keys.JWT_REVOKED_PREFIX, leeway_s],
    )
    return None if moved == [-1] else list(moved)


def list_workers(r: redis.Redis, org_id: str) -> list[dict]:
    ids: list[str] = r.zrange(keys.org_workers(org_id), 0, -1)  # type: ignore[assignment]
    pipe = r.pipeline(transaction=False)
    for worker_id in ids:
        pipe.hgetall(keys.worker(worker_id))
        pipe.scard(keys.worker_sessions(worker_id))
    out = pipe.execute()
    workers = []
    for record, active in zip(out[::2], out[1::2], strict=True):
        if record and record.get("status") != "deregistered":
            record["activeSessions"] = active
            workers.append(record)
    return workers
