"""How stored records are shown on the wire (camelCase; queuedAt in ms, other times ISO)."""

from __future__ import annotations

import json

from state.clock import iso_ms


def _num(v: str | None, kind=float):
    return kind(v) if v not in (None, "") else None


def project(p: dict) -> dict:
    return {
        "id": p["id"],
        "slug": p["slug"],
        "name": p["name"],
        "repository": p.get("repository") or None,
        "orgId": p["orgId"],
        "createdAt": iso_ms(p.get("createdAt")),
    }


def key(k: dict) -> dict:
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


def session(s: dict) -> dict:
    queued_at = _num(s.get("queuedAt"), int)
    started = _num(s.get("startedAt"), int)
    finished = _num(s.get("finishedAt"), int)
    updated = _num(s.get("updatedAt"), int)
    duration = None
    if started is not None:
        duration = (finished or updated or started) - started
    error = s.get("error")
    return {
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
        "costUsd": _num(s.get("totalCostUsd")),
        "inputTokens": _num(s.get("inputTokens"), int),
        "outputTokens": _num(s.get("outputTokens"), int),
        "provider": s.get("provider") or None,
        "providerSessionId": s.get("providerSessionId") or None,
        "worktreePath": s.get("worktreePath") or None,
        "lastTool": s.get("lastTool") or None,
        "error": json.loads(error) if error else None,
    }


def host_status(w: dict) -> dict:
    """The stored host status as `{status, recommendedAction?, candidatePoolIds?}`."""
    out: dict = {"status": w.get("hostStatus") or "ok"}
    if w.get("recommendedAction"):
        out["recommendedAction"] = w["recommendedAction"]
    if w.get("candidatePoolIds"):
        out["candidatePoolIds"] = json.loads(w["candidatePoolIds"])
    return out
