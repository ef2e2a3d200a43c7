"""Worker hosts: register, refresh-token, poll, deregister, list (heartbeat: heartbeats.py)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from api_shim import auth, bodies, tokens
from api_shim.context import r, settings
from api_shim.errors import ApiError
from api_shim.platform import blueprint, views
from state import clock, orgs, sessions
from state import workers as workers_state
from state.clock import iso_ms

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


def load_worker(worker_id: str, cred: auth.Credential) -> dict:
    """The worker, if it exists in the caller's org (404 otherwise, never 403)."""
    record = workers_state.get(r(), worker_id, cred.org_id) if WORKER_ID.match(worker_id) else None
    if record is None:
        raise ApiError(404, "Worker not found")
    return record


def _token_response(worker: dict) -> dict:
    worker = {**worker, "projects_list": workers_state.projects_of(worker)}
    token, claims = tokens.mint(settings(), worker)
    workers_state.track_jti(r(), worker["id"], claims["jti"], claims["exp"] * 1000, clock.now_ms())
    return {"runtimeToken": token, "runtimeTokenExpiresAt": iso_ms(claims["exp"] * 1000)}


@blueprint.post("/workers/register")
def register():
    cred = auth.authenticate("api_key", "legacy")
    if not (cred.has_scope("worker:register") or cred.at_least("admin")):
        raise auth.forbidden("Requires scope worker:register")
    body = bodies.parse(RegisterBody)
    projects: str | list[str] = cred.projects
    if body.projects is not None:
        resolved = []
        for ref in body.projects:
            project = orgs.find_project(r(), cred.org_id, ref)
            if project is None:
                raise ApiError(400, f"projects: unknown project {ref}")
            if not cred.may_use_project(project["id"]):
                raise auth.forbidden(f"Key has no access to project {ref}")
            resolved.append(project["id"])
        projects = sorted(set(resolved))
    worker = workers_state.register(
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
        "workerId": worker["id"],
        "heartbeatInterval": s.heartbeat_interval_ms,
        "pollInterval": s.poll_interval_ms,
        **_token_response(worker),
    }, 201


@blueprint.post("/workers/<worker_id>/refresh-token")
def refresh_token(worker_id: str):
    cred = auth.authenticate("api_key", "legacy")
    bodies.parse(bodies.Empty, allow_empty=True)  # no fields, but a malformed body is a 400
    worker = load_worker(worker_id, cred)
    if cred.key_id != worker.get("regKeyId") and not cred.at_least("admin"):
        raise auth.forbidden("Only the registering key may refresh this worker's token")
    return _token_response(worker)


@blueprint.get("/workers/<worker_id>/poll")
def poll(worker_id: str):
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
    if work == sessions.REVOKED:
        raise auth.unauthorized()
    if work is None:
        raise ApiError(404, "Worker not found")
    return {
        "work": work,
        "preClaimed": True,
        "claimedSessionIds": [w["sessionId"] for w in work],
    }


@blueprint.delete("/workers/<worker_id>")
def deregister(worker_id: str):
    cred = auth.authenticate("api_key", "jwt", "legacy")
    if cred.kind == "jwt" and cred.worker_id != worker_id:
        raise auth.forbidden("Token does not belong to this worker")
    if cred.kind == "api_key" and not cred.at_least("admin"):
        raise auth.forbidden("Requires role admin or higher")
    load_worker(worker_id, cred)
    moved = workers_state.deregister(r(), worker_id, clock.now_ms(), settings().jwt_leeway_seconds)
    if moved is None:
        raise ApiError(404, "Worker not found")
    return {"deregistered": True, "unclaimedSessions": moved}


def worker_view(w: dict, now_ms: int) -> dict:
    s = settings()
    last = int(w.get("lastHeartbeat") or 0)
    if w.get("status") == "offline" or now_ms - last > s.worker_offline_after_s * 1000:
        status = "offline"
    elif w.get("reportedStatus") == "draining":
        status = "draining"
    else:
        status = "active"
    reported = w.get("activeCount")
    return {
        "id": w["id"],
        "hostname": w["hostname"],
        "capacity": int(w["capacity"]),
        "activeCount": int(reported) if reported not in (None, "") else w["activeSessions"],
        "status": status,
        "hostStatus": views.host_status(w),
        "lastHeartbeat": iso_ms(last),
        "registeredAt": iso_ms(w.get("registeredAt")),
        "version": w.get("version") or None,
        "projects": workers_state.projects_of(w),
        "machineId": w.get("machineId") or None,
        "region": w.get("region") or None,
    }


@blueprint.get("/workers")
def list_workers():
    cred = auth.api_key()
    now = clock.now_ms()
    rows = [worker_view(w, now) for w in workers_state.list_workers(r(), cred.org_id)]
    live = [w for w in rows if w["status"] != "offline"]
    return {
        "workers": rows,
        "summary": {
            "totalWorkers": len(rows),
            "activeWorkers": sum(1 for w in rows if w["status"] == "active"),
            "totalCapacity": sum(w["capacity"] for w in live),
            "totalActive": sum(w["activeCount"] for w in live),
            "availableCapacity": sum(max(w["capacity"] - w["activeCount"], 0) for w in live),
            "queueLength": sessions.queue_length(r(), cred.org_id),
        },
    }
