"""POST /api/workers/{id}/heartbeat: the host's report in, its pending mutations out."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api_shim import auth, bodies, budgets
from api_shim.context import r, settings
from api_shim.declare import declare
from api_shim.errors import ApiError
from api_shim.platform import answers, blueprint
from api_shim.platform.hosts import WORKER_ID
from api_shim.vocab import HostReportedStatus
from dispatchyard.state import clock, heartbeats
from dispatchyard.state.clock import iso_ms

Percent = Field(None, ge=0, le=100, allow_inf_nan=False)


class Load(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    cpu: float | None = Percent
    memory: float | None = Percent


class LoadAverage(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    one: float | None = Field(None, ge=0, allow_inf_nan=False)
    five: float | None = Field(None, ge=0, allow_inf_nan=False)
    fifteen: float | None = Field(None, ge=0, allow_inf_nan=False)


class AllowEntry(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    id: str = Field(min_length=1, max_length=200)
    repository: str | None = Field(None, max_length=2000)


class Failure(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    id: str = Field(min_length=1, max_length=100)
    error: str = Field("", max_length=4000)


class HeartbeatBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    __messages__ = {"activeCount": "activeCount must be a non-negative number"}
    status: HostReportedStatus | None = None
    activeCount: int = Field(ge=0, le=1_000_000)
    activeInteractiveCount: int | None = Field(None, ge=0, le=1_000_000)
    maxSessions: int | None = Field(None, ge=0, le=1_000_000)
    load: Load | None = None
    loadAverage: LoadAverage | None = None
    allowlistHash: str | None = Field(None, max_length=200)
    allowlist: list[AllowEntry] | None = Field(None, max_length=10_000)
    enabledProjectIds: list[str] | None = Field(None, max_length=10_000)
    appliedMutations: list[str] = Field(default_factory=list, max_length=1000)
    mutationFailures: list[Failure] = Field(default_factory=list, max_length=1000)


@blueprint.post("/workers/<worker_id>/heartbeat")
@budgets.per_host
@declare(body=HeartbeatBody, responses={200: answers.HeartbeatAnswer, 429: budgets.OverBudget})
def heartbeat(worker_id: str) -> dict[str, Any]:
    cred = auth.worker("worker:heartbeat", worker_id, defer_revocation=True)
    body = bodies.parse(HeartbeatBody)
    if not WORKER_ID.match(worker_id):
        raise ApiError(404, "Worker not found")
    fields: dict[str, Any] = {
        "activeCount": body.activeCount,
        "reportedStatus": body.status or "",
    }
    for name in ("activeInteractiveCount", "maxSessions", "load", "loadAverage"):
        value = getattr(body, name)
        if value is not None:
            fields[name] = value.model_dump_json() if isinstance(value, BaseModel) else value
    if body.enabledProjectIds is not None:
        fields["enabledProjectIds"] = ",".join(body.enabledProjectIds)
    s = settings()
    now = clock.now_ms()
    result = heartbeats.heartbeat(
        r(),
        worker_id,
        org_id=cred.org_id,
        revoked_key=cred.revoked_key(),
        fields=fields,
        applied=body.appliedMutations,
        failures=[f.model_dump() for f in body.mutationFailures],
        allowlist_hash=body.allowlistHash,
        allowlist=[a.model_dump() for a in body.allowlist] if body.allowlist is not None else None,
        now_ms=now,
        redeliver_after_ms=int(s.mutation_redeliver_after_s * 1000),
        max_deliveries=s.mutation_max_deliveries,
    )
    response: dict[str, Any] = {
        "acknowledged": True,
        "serverTime": iso_ms(now),
        "pendingWorkCount": result.pending_work_count,
        "hostStatus": result.host_status,
        "pendingMutations": [
            {**m, "requestedAt": iso_ms(m["requestedAt"])} for m in result.mutations
        ],
    }
    if result.allowlist_stale:
        response["allowlistRequested"] = True
    return response
