"""Org projects and API keys: /api/org/{orgId}/projects, /api/org/{orgId}/keys."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api_shim import auth, bodies, budgets
from api_shim.context import r
from api_shim.declare import declare
from api_shim.errors import ApiError
from api_shim.platform import answers, blueprint, views
from api_shim.vocab import Role, Scope
from dispatchyard.state import apikeys, clock, orgs
from dispatchyard.state.models import ROLE_RANK, SLUG_PATTERN


class ProjectBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    slug: str = Field(pattern=SLUG_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    repository: str | None = Field(None, max_length=2000)


class KeyBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    name: str = Field(min_length=1, max_length=200)
    role: Role = "member"
    projects: Literal["all"] | list[str] = "all"
    scopes: list[Scope] = Field(default_factory=list)

    @field_validator("projects")
    @classmethod
    def _non_empty(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and not v:
            raise ValueError('must be "all" or a non-empty list of project ids')
        return v


def own_org(cred: auth.Credential, org_id: str) -> None:
    if cred.org_id != org_id:
        raise ApiError(404, "Organization not found")


@blueprint.post("/org/<org_id>/projects")
@declare(body=ProjectBody, responses={201: answers.ProjectCreated, 429: budgets.OverBudget})
def create_project(org_id: str) -> tuple[dict[str, Any], int]:
    cred = auth.api_key("admin")
    own_org(cred, org_id)
    body = bodies.parse(ProjectBody)
    project = orgs.create_project(
        r(), org_id, body.slug, body.name, body.repository, clock.now_ms()
    )
    return {"project": views.project(project)}, 201


@blueprint.get("/org/<org_id>/projects")
@declare(responses={200: answers.Projects, 429: budgets.OverBudget})
def list_projects(org_id: str) -> dict[str, Any]:
    cred = auth.api_key()
    own_org(cred, org_id)
    projects = [p for p in orgs.list_projects(r(), org_id) if cred.may_use_project(p["id"])]
    return {"projects": [views.project(p) for p in projects]}


@blueprint.post("/org/<org_id>/keys")
@declare(body=KeyBody, responses={201: answers.KeyCreated, 429: budgets.OverBudget})
def create_key(org_id: str) -> tuple[dict[str, Any], int]:
    cred = auth.api_key()
    own_org(cred, org_id)
    if not (cred.at_least("admin") or cred.has_scope("org_keys:write")):
        raise auth.forbidden("Requires role admin or scope org_keys:write")
    body = bodies.parse(KeyBody)
    if ROLE_RANK[body.role] > ROLE_RANK[cred.role or "auditor"]:
        raise auth.forbidden("A key cannot mint a key of a higher role than its own")
    if not cred.at_least("admin") and any(not cred.has_scope(s) for s in body.scopes):
        raise auth.forbidden("A key cannot grant scopes it does not hold")
    projects = body.projects
    if projects != "all":
        found = orgs.get_projects(r(), org_id, projects)
        for project_id, project in zip(projects, found, strict=True):
            if project is None:
                raise ApiError(400, f"projects: unknown project {project_id}")
    if cred.projects != "all" and (projects == "all" or not set(projects) <= set(cred.projects)):
        raise auth.forbidden("A key cannot grant projects it cannot use")
    record, secret = apikeys.create_key(
        r(),
        org_id,
        name=body.name,
        role=body.role,
        projects=projects,
        scopes=list(body.scopes),
        now_ms=clock.now_ms(),
        created_by=cred.key_id,
    )
    return {**views.key(record), "key": secret}, 201


@blueprint.get("/org/<org_id>/keys")
@declare(responses={200: answers.Keys, 429: budgets.OverBudget})
def list_keys(org_id: str) -> dict[str, Any]:
    cred = auth.api_key("admin")
    own_org(cred, org_id)
    return {"keys": [views.key(k) for k in apikeys.list_keys(r(), org_id)]}


@blueprint.delete("/org/<org_id>/keys/<key_id>")
@declare(responses={200: answers.Revoked, 429: budgets.OverBudget})
def revoke_key(org_id: str, key_id: str) -> dict[str, Any]:
    cred = auth.api_key()
    own_org(cred, org_id)
    if not (cred.at_least("admin") or cred.has_scope("org_keys:write")):
        raise auth.forbidden("Requires role admin or scope org_keys:write")
    target = apikeys.get_key(r(), org_id, key_id)
    if target is None:
        raise ApiError(404, "Key not found")
    if ROLE_RANK[target["role"]] > ROLE_RANK[cred.role or "auditor"]:
        raise auth.forbidden("A key cannot revoke a key of a higher role than its own")
    apikeys.revoke(r(), org_id, key_id, clock.now_ms())
    return {"revoked": True}
