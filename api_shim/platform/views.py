"""How stored records are shown on the wire (camelCase; queuedAt in ms, other times ISO)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from dispatchyard.state import heartbeats, hosts
from dispatchyard.state.clock import iso_ms
from dispatchyard.state.models import HostState

Record = dict[str, Any]
N = TypeVar("N", int, float)


def _num(v: str | None, kind: Callable[[str], N]) -> N | None:
    return kind(v) if v is not None and v != "" else None


def project(p: Record) -> Record:
    return {
        "id": p["id"],
        "slug": p["slug"],
        "name": p["name"],
        "repository": p.get("repository") or None,
        "orgId": p["orgId"],
        "createdAt": iso_ms(p.get("createdAt")),
    }


def key(k: Record) -> Record:
    return {
        "id": k["id"],
        "keyPrefix": k["keyPrefix"],
        "name": k["name"],
        "role": k["role"],
        "projects": json.loads(k["projects"]),
        "scopes": json.loads(k["scopes"]),
        "createdAt": iso_ms(k.get("createdAt")),
        "revokedAt": iso_ms(k.get("revokedAt")),
    }


def session(s: Record, with_summary: bool = False) -> Record:
    """A session record on the wire. The runner's completion `summary` (unbounded but for the
    body limit) comes only when asked for: the list would carry up to 1000 of them."""
    queued_at = _num(s.get("queuedAt"), int)
    started = _num(s.get("startedAt"), int)
    finished = _num(s.get("finishedAt"), int)
    updated = _num(s.get("updatedAt"), int)
    duration = None
    if started is not None:
        duration = (finished or updated or started) - started
    error = s.get("error")
    out: Record = {
        "id": s["id"],
        "identifier": s.get("issueIdentifier") or None,
        "issueId": s.get("issueId") or None,
        "projectId": s.get("projectId") or None,
        "status": s["status"],
        "priority": _num(s.get("priority"), int),
        "workType": s.get("workType") or None,
        "workerId": s.get("workerId") or None,
        "queuedAt": queued_at,
        "claimedAt": iso_ms(s.get("claimedAt")),
        "startedAt": iso_ms(started),
        "finishedAt": iso_ms(finished),
        "updatedAt": iso_ms(updated),
        "durationMs": duration,
        "costUsd": _num(s.get("totalCostUsd"), float),
        "inputTokens": _num(s.get("inputTokens"), int),
        "outputTokens": _num(s.get("outputTokens"), int),
        "provider": s.get("provider") or None,
        "providerSessionId": s.get("providerSessionId") or None,
        "worktreePath": s.get("worktreePath") or None,
        "lastTool": s.get("lastTool") or None,
        "lastActivityAt": iso_ms(s.get("lastActivityAt")),
        "lockRefreshedAt": iso_ms(s.get("lockRefreshedAt")),
        "error": json.loads(error) if error else None,
    }
    if with_summary:
        out["summary"] = s.get("summary") or None
    return out


def host_status(w: Record) -> Record:
    """The stored host status as `{status, recommendedAction?, candidatePoolIds?}`."""
    out: Record = {"status": w.get("hostStatus") or "ok"}
    if w.get("recommendedAction"):
        out["recommendedAction"] = w["recommendedAction"]
    if w.get("candidatePoolIds"):
        out["candidatePoolIds"] = heartbeats.candidate_pool_ids(w["candidatePoolIds"])
    return out


def host(w: Record, now_ms: int, offline_after_ms: int) -> Record:
    """A daemon host in the /api/workers list."""
    last = int(w.get("lastHeartbeat") or 0)
    # The list's status: the lifecycle state, except that a host silent past the offline window
    # shows offline before the sweep marks it, and an active host that reports draining shows
    # draining.
    status: str
    if w.get("status") == HostState.OFFLINE or now_ms - last > offline_after_ms:
        status = HostState.OFFLINE
    elif w.get("reportedStatus") == "draining":
        status = "draining"
    else:
        status = HostState.ACTIVE
    reported = w.get("activeCount")
    return {
        "id": w["id"],
        "hostname": w["hostname"],
        "capacity": int(w["capacity"]),
        "activeCount": int(reported) if reported not in (None, "") else w["activeSessions"],
        "status": status,
        "hostStatus": host_status(w),
        "lastHeartbeat": iso_ms(last),
        "registeredAt": iso_ms(w.get("registeredAt")),
        "version": w.get("version") or None,
        "projects": hosts.projects_of(w),
        "machineId": w.get("machineId") or None,
        "region": w.get("region") or None,
    }


def mutation(m: Record, with_history: list[Record] | None = None) -> Record:
    """A daemon config mutation, with its audit history when asked for."""
    out: Record = {
        "id": m["id"],
        "orgId": m["orgId"],
        "workerHostId": m["workerHostId"],
        "op": m["op"],
        "params": json.loads(m["params"]),
        "status": m["status"],
        "requestedBy": m.get("requestedBy") or None,
        "requestedAt": iso_ms(m.get("requestedAt")),
        "deliveredAt": iso_ms(m.get("deliveredAt")),
        "lastDeliveredAt": iso_ms(m.get("lastDeliveredAt")),
        "cancelledAt": iso_ms(m.get("cancelledAt")),
        "appliedAt": iso_ms(m.get("appliedAt")),
        "failedAt": iso_ms(m.get("failedAt")),
        "error": m.get("error") or None,
        "deliveryCount": int(m.get("deliveryCount") or 0),
    }
    if with_history is not None:
        out["history"] = [{**e, "at": iso_ms(e["at"])} for e in with_history]
    return out
