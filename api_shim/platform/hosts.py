"""Daemon hosts, "workers" in the API (/api/workers/...): register, refresh-token, poll,
deregister, list (heartbeat: heartbeats.py)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api_shim import auth, bodies, budgets, tokens
from api_shim.context import r, settings
from api_shim.declare import declare
from api_shim.errors import ApiError
from api_shim.platform import answers, blueprint, views
from dispatchyard.state import clock, hosts, orgs, sessions
from dispatchyard.state.clock import iso_ms
from dispatchyard.state.models import HostState

WORKER_ID = re.compile(r"^wkr_[0-9a-f]{16}$")


class RegisterBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    __messages__ = {
        "hostname": "hostname is required",
        "capacity": "capacity must be a positive number",
        "projects": "projects must be an array of strings",
    }
    hostname: str = Field(min_length=1, max_length=255)
    capacity: int = Field(ge=1, le=1_000_000)
    version: str | None = Field(None, max_length=100)
    projects: list[str] | None = Field(None, max_length=1000)
    machineId: str | None = Field(None, min_length=1, max_length=200)
    region: str | None = Field(None, max_length=100)


def load_host(host_id: str, cred: auth.Credential) -> dict[str, Any]:
    """The host, if it exists in the caller's org (404 otherwise, never 403)."""
    record = hosts.get(r(), host_id, cred.org_id) if WORKER_ID.match(host_id) else None
    if record is None:
        raise ApiError(404, "Worker not found")
    return record


def _token_response(host: dict[str, Any]) -> dict[str, Any]:
    host = {**host, "projects_list": hosts.projects_of(host)}
    token, claims = tokens.mint(settings(), host)
    hosts.track_jti(r(), host["id"], claims["jti"], claims["exp"] * 1000, clock.now_ms())
    return {"runtimeToken": token, "runtimeTokenExpiresAt": iso_ms(claims["exp"] * 1000)}


@blueprint.post("/workers/register")
@declare(body=RegisterBody, responses={201: answers.Registered, 429: budgets.OverBudget})
def register() -> tuple[dict[str, Any], int]:
    cred = auth.authenticate("api_key", "legacy")
    if not (cred.has_scope("worker:register") or cred.at_least("admin")):
        raise auth.forbidden("Requires scope worker:register")
    body = bodies.parse(RegisterBody)
    projects: str | list[str] = cred.projects
    if body.projects is not None:
        resolved = []
        found = orgs.find_projects(r(), cred.org_id, body.projects)
        for ref, project in zip(body.projects, found, strict=True):
            if project is None:
                raise ApiError(400, f"projects: unknown project {ref}")
            if not cred.may_use_project(project["id"]):
                raise auth.forbidden(f"Key has no access to project {ref}")
            resolved.append(project["id"])
        projects = sorted(set(resolved))
    host = hosts.register(
        r(),
        cred.org_id,
        hostname=body.hostname,
        capacity=body.capacity,
        version=body.version,
        projects=projects,
        machine_id=body.machineId,
        region=body.region,
        reg_key_id=cred.key_id or "",
        now_ms=clock.now_ms(),
    )
    s = settings()
    return {
        "workerId": host["id"],
        "heartbeatInterval": s.heartbeat_interval_ms,
        "pollInterval": s.poll_interval_ms,
        **_token_response(host),
    }, 201


@blueprint.post("/workers/<worker_id>/refresh-token")
@declare(
    body=bodies.Empty,
    optional_body=True,
    responses={200: answers.RuntimeToken, 429: budgets.OverBudget},
)
def refresh_token(worker_id: str) -> dict[str, Any]:
    cred = auth.authenticate("api_key", "legacy")
    bodies.parse(bodies.Empty, allow_empty=True)  # no fields, but a malformed body is a 400
    host = load_host(worker_id, cred)
    if cred.key_id != host.get("regKeyId") and not cred.at_least("admin"):
        raise auth.forbidden("Only the registering key may refresh this worker's token")
    return _token_response(host)


@blueprint.get("/workers/<worker_id>/poll")
@budgets.per_host
@declare(responses={200: answers.Poll, 429: budgets.OverBudget})
def poll(worker_id: str) -> dict[str, Any]:
    cred = auth.worker("worker:poll", worker_id, defer_revocation=True)
    if not WORKER_ID.match(worker_id):
        raise ApiError(404, "Worker not found")
    work = sessions.poll(
        r(),
        worker_id,
        cred.org_id,
        clock.now_ms(),
        settings().poll_batch_max,
        revoked_key=cred.revoked_key(),
    )
    return {
        "work": work,
        "preClaimed": True,
        "claimedSessionIds": [w["sessionId"] for w in work],
    }


@blueprint.delete("/workers/<worker_id>")
@declare(responses={200: answers.Deregistered, 429: budgets.OverBudget})
def deregister(worker_id: str) -> dict[str, Any]:
    cred = auth.authenticate("api_key", "jwt", "legacy")
    if cred.kind == "jwt" and cred.worker_id != worker_id:
        raise auth.forbidden("Token does not belong to this worker")
    if cred.kind == "api_key" and not cred.at_least("admin"):
        raise auth.forbidden("Requires role admin or higher")
    load_host(worker_id, cred)
    moved = hosts.deregister(r(), worker_id, clock.now_ms(), settings().jwt_leeway_seconds)
    return {"deregistered": True, "unclaimedSessions": moved}


@blueprint.get("/workers")
@declare(responses={200: answers.Hosts, 429: budgets.OverBudget})
def list_workers() -> dict[str, Any]:
    cred = auth.api_key()
    now = clock.now_ms()
    offline_ms = int(settings().worker_offline_after_s * 1000)
    rows = [views.host(w, now, offline_ms) for w in hosts.list_hosts(r(), cred.org_id)]
    live = [w for w in rows if w["status"] != HostState.OFFLINE]
    return {
        "workers": rows,
        "summary": {
            "totalWorkers": len(rows),
            "activeWorkers": sum(1 for w in rows if w["status"] == HostState.ACTIVE),
            "totalCapacity": sum(w["capacity"] for w in live),
            "totalActive": sum(w["activeCount"] for w in live),
            "availableCapacity": sum(max(w["capacity"] - w["activeCount"], 0) for w in live),
            "queueLength": sessions.queue_length(r(), cred.org_id),
        },
    }
