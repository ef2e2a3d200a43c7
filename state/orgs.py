"""Organizations and their projects."""

from __future__ import annotations

import json
import secrets

import redis

from state import keys
from state.scripts import scripts


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def create_org(r: redis.Redis, name: str, slug: str, now_ms: int) -> dict | None:
    """Create an org; None when the slug is taken."""
    org_id = new_id("org")
    record = {"id": org_id, "name": name, "slug": slug, "createdAt": now_ms}
    created = scripts(r).create_org(
        keys=[keys.org_slug(slug), keys.org(org_id), keys.ORGS], args=[org_id, json.dumps(record)]
    )
    return record if created else None


def get_org(r: redis.Redis, org_id: str) -> dict | None:
    record = r.hgetall(keys.org(org_id))
    return record or None


def resolve_org(r: redis.Redis, id_or_slug: str) -> str | None:
    """An org id from an id or a slug."""
    if r.exists(keys.org(id_or_slug)):
        return id_or_slug
    org_id = r.get(keys.org_slug(id_or_slug))
    return str(org_id) if org_id else None


def create_project(
    r: redis.Redis, org_id: str, slug: str, name: str, repository: str | None, now_ms: int
) -> dict | None:
    """Create a project; None when the slug is taken in this org."""
    project_id = new_id("prj")
    record = {
        "id": project_id,
        "orgId": org_id,
        "slug": slug,
        "name": name,
        "repository": repository or "",
        "createdAt": now_ms,
    }
    created = scripts(r).create_project(
        keys=[
            keys.project_slug(org_id, slug),
            keys.project(project_id),
            keys.org_projects(org_id),
        ],
        args=[project_id, now_ms, json.dumps(record)],
    )
    return record if created else None


def get_project(r: redis.Redis, org_id: str, project_id: str) -> dict | None:
    """The project, only if it belongs to `org_id`."""
    record = r.hgetall(keys.project(project_id))
    return record if record and record.get("orgId") == org_id else None


def project_by_slug(r: redis.Redis, org_id: str, slug: str) -> dict | None:
    project_id = r.get(keys.project_slug(org_id, slug))
    return get_project(r, org_id, str(project_id)) if project_id else None


def find_project(r: redis.Redis, org_id: str, id_or_slug: str) -> dict | None:
    return get_project(r, org_id, id_or_slug) or project_by_slug(r, org_id, id_or_slug)


def list_projects(r: redis.Redis, org_id: str) -> list[dict]:
    ids: list[str] = r.zrange(keys.org_projects(org_id), 0, -1)  # type: ignore[assignment]
    pipe = r.pipeline(transaction=False)
    for project_id in ids:
        pipe.hgetall(keys.project(project_id))
    return [p for p in pipe.execute() if p]
