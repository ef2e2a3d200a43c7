"""Daemon config mutations: /api/daemon/mutations (enqueue, list, get, cancel)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from flask import request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api_shim import auth, bodies, budgets
from api_shim.context import r
from api_shim.declare import declare
from api_shim.errors import ApiError
from api_shim.platform import answers, blueprint, views
from api_shim.vocab import MutationStatus, Workload
from dispatchyard.state import clock, hosts, mutations
from dispatchyard.state.errors import Conflict
from dispatchyard.state.models import MUTATION_OPS

MUTATION_ID = re.compile(r"^mut_[0-9a-f]{24}$")
Id = Annotated[str, Field(min_length=1, max_length=200)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ProjectAdd(_Params):
    id: Id
    repository: str = Field(min_length=1, max_length=2000)


class ProjectRemove(_Params):
    id: Id


class PoolDeleted(_Params):
    poolId: Id
    candidatePoolIds: list[Id] | None = Field(None, max_length=1000)
    reason: str | None = Field(None, max_length=2000)


class ModelAccessSet(_Params):
    workload: Workload | None = None
    policy: dict[str, Any]


class ModelAccessClear(_Params):
    workload: Workload | None = None


PARAMS: dict[str, type[_Params]] = {
    "project.add": ProjectAdd,
    "project.remove": ProjectRemove,
    "pool.deleted": PoolDeleted,
    "modelAccess.set": ModelAccessSet,
    "modelAccess.clear": ModelAccessClear,
}
assert set(PARAMS) == set(MUTATION_OPS)


class MutationBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    workerHostId: str = Field(min_length=1, max_length=100)
    op: str
    params: dict[str, Any] = Field(default_factory=dict)


@blueprint.post("/daemon/mutations")
@declare(body=MutationBody, responses={201: answers.MutationCreated, 429: budgets.OverBudget})
def enqueue_mutation() -> tuple[dict[str, Any], int]:
    cred = auth.api_key("admin")
    body = bodies.parse(MutationBody)
    model = PARAMS.get(body.op)
    if model is None:
        raise ApiError(400, f"op must be one of: {', '.join(MUTATION_OPS)}")
    try:
        params = model.model_validate(body.params).model_dump(exclude_none=True)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        field = ".".join(["params", *(str(p) for p in err["loc"])])
        message = f"{field} is required" if err["type"] == "missing" else f"{field}: {err['msg']}"
        raise ApiError(400, message) from None
    record = mutations.enqueue(
        r(),
        org_id=cred.org_id,
        host_id=body.workerHostId,
        op=body.op,
        params=params,
        requested_by=cred.key_id or "",
        now_ms=clock.now_ms(),
    )
    return {"mutation": views.mutation(record)}, 201


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    workerHostId: str | None = Field(None, max_length=100)
    status: MutationStatus | None = None
    limit: int = Field(100, ge=1, le=500)


@blueprint.get("/daemon/mutations")
@declare(query=ListQuery, responses={200: answers.Mutations, 429: budgets.OverBudget})
def list_mutations() -> dict[str, Any]:
    cred = auth.api_key()
    q = bodies.validate(ListQuery, request.args.to_dict(), loc="query")
    if q.workerHostId is not None and hosts.get(r(), q.workerHostId, cred.org_id) is None:
        raise ApiError(404, "Worker host not found")
    rows = mutations.list_for(
        r(), cred.org_id, host_id=q.workerHostId, status=q.status, limit=q.limit
    )
    return {"mutations": [views.mutation(m) for m in rows]}


def _load(mutation_id: str, cred: auth.Credential) -> dict[str, Any]:
    if not MUTATION_ID.match(mutation_id):
        raise ApiError(404, "Mutation not found")
    return mutations.get(r(), cred.org_id, mutation_id)


@blueprint.get("/daemon/mutations/<mutation_id>")
@declare(responses={200: answers.MutationFound, 429: budgets.OverBudget})
def get_mutation(mutation_id: str) -> dict[str, Any]:
    cred = auth.api_key()
    record = _load(mutation_id, cred)
    return {"mutation": views.mutation(record, mutations.history(r(), mutation_id))}


@blueprint.delete("/daemon/mutations/<mutation_id>")
@declare(responses={200: answers.Cancelled, 409: answers.CancelRefused, 429: budgets.OverBudget})
def cancel_mutation(mutation_id: str) -> dict[str, Any] | tuple[dict[str, Any], int]:
    cred = auth.api_key("admin")
    _load(mutation_id, cred)
    try:
        mutations.cancel(r(), cred.org_id, mutation_id, cred.key_id or "", clock.now_ms())
    except Conflict as refused:
        # Not the error envelope: the platform answers a lost race with the cancel's own shape.
        return {"cancelled": False, "reason": refused.fields["reason"]}, 409
    return {"cancelled": True}
