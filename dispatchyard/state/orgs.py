"""Organizations and their projects."""

from __future__ import annotations

import json
import secrets

import redis

from dispatchyard.state import keys, store
from dispatchyard.state.scripts import scripts

Record = dict[str, str]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def create_org(r: redis.Redis, name: str, slug: str, now_ms: int) -> dict[str, str | int]:
    """Create an org; its record. Conflict when the slug is taken."""
    org_id = new_id("org")
    record: dict[str, str | int] = {"id": org_id, "name": name, "slug": slug, "createdAt": now_ms}
    scripts(r).create_org(
        keys=[keys.org_slug(slug), keys.org(org_id), keys.ORGS], args=[org_id, json.dumps(record)]
    )
    return record


def resolve_org(r: redis.Redis, id_or_slug: str) -> str | None:
    """An org id from an id or a slug."""
    if r.exists(keys.org(id_or_slug)):
        return id_or_slug
    return store.get(r, keys.org_slug(id_or_slug)) or None


def create_project(
    r: redis.Redis, org_id: str, slug: str, name: str, repository: str | None, now_ms: int
) -> dict[str, str | int]:
    """Create a project; its record. Conflict when the slug is taken in this org."""
    project_id = new_id("prj")
    record: dict[str, str | int] = {
        "id": project_id,
        "orgId": org_id,
        "slug": slug,
        "name": name,
        "repository": repository or "",
        "createdAt": now_ms,
    }
    scripts(r).create_project(
        keys=[
            keys.project_slug(org_id, slug),
            keys.project(project_id),
            keys.org_projects(org_id),
        ],
        args=[project_id, now_ms, json.dumps(record)],
    )
    return record


def get_project(r: redis.Redis, org_id: str, project_id: str) -> Record | None:
    """The project, only if it belongs to `org_id`."""
    record = store.hgetall(r, keys.project(project_id))
    return record if record and record.get("orgId") == org_id else None


def get_projects(r: redis.Redis, org_id: str, project_ids: list[str]) -> list[Record | None]:
    """`get_project` for each id, in one round trip, in the order of `project_ids`."""
    records = store.hgetall_many(r, [keys.project(project_id) for project_id in project_ids])
    return [p if p and p.get("orgId") == org_id else None for p in records]


def project_by_slug(r: redis.Redis, org_id: str, slug: str) -> Record | None:
    project_id = store.get(r, keys.project_slug(org_id, slug))
    return get_project(r, org_id, project_id) if project_id else None


def find_project(r: redis.Redis, org_id: str, id_or_slug: str) -> Record | None:
    return get_project(r, org_id, id_or_slug) or project_by_slug(r, org_id, id_or_slug)


def find_projects(r: redis.Redis, org_id: str, refs: list[str]) -> list[Record | None]:
    """`find_project` for each id or slug, in one round trip, in the order of `refs`."""
    if not refs:
        return []
    flats = scripts(r).find_projects(
        keys=[k for ref in refs for k in (keys.project(ref), keys.project_slug(org_id, ref))],
        args=[org_id],
    )
    return [dict(zip(flat[::2], flat[1::2], strict=True)) or None for flat in flats]


def list_projects(r: redis.Redis, org_id: str) -> list[Record]:
    ids = store.zrange(r, keys.org_projects(org_id))
    return [p for p in store.hgetall_many(r, [keys.project(i) for i in ids]) if p]
