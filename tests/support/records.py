"""Records made and read through the API: orgs with an owner key, projects, keys, registered
hosts, queued sessions, and the status of jobs and templates."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from tests.support.http import Api
from tests.support.waits import wait_for


@dataclass
class Org:
    id: str
    slug: str
    key: str  # owner key
    projects: dict[str, dict] = field(default_factory=dict)


def new_org(r, slug: str | None = None) -> Org:
    from dispatchyard.state import apikeys, clock, orgs

    slug = slug or f"org-{secrets.token_hex(4)}"
    org = orgs.create_org(r, slug.title(), slug, clock.now_ms())
    assert org is not None, f"slug {slug} taken"
    _, secret = apikeys.create_key(
        r,
        org["id"],
        name="owner",
        role="owner",
        projects="all",
        scopes=["*"],
        now_ms=clock.now_ms(),
    )
    return Org(org["id"], slug, secret)


def project(api: Api, org: Org, slug: str = "app", repository: str | None = None) -> dict:
    if slug in org.projects:
        return org.projects[slug]
    resp = api.post(
        f"/api/org/{org.id}/projects",
        org.key,
        json={
            "slug": slug,
            "name": slug.title(),
            "repository": repository or f"github.com/x/{slug}",
        },
    )
    assert resp.status_code == 201, resp.text
    org.projects[slug] = resp.json()["project"]
    return org.projects[slug]


def key(api: Api, org: Org, role: str = "member", **body: Any) -> str:
    resp = api.post(f"/api/org/{org.id}/keys", org.key, json={"name": role, "role": role, **body})
    assert resp.status_code == 201, resp.text
    return resp.json()["key"]


def register(api: Api, org: Org, capacity: int = 5, **body: Any) -> dict:
    """Register a worker with the owner key; returns the response (workerId, runtimeToken)."""
    body = {"hostname": f"host-{secrets.token_hex(3)}", "capacity": capacity, **body}
    resp = api.post("/api/workers/register", org.key, json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def enqueue(api: Api, org: Org, project_slug: str = "app", **body: Any) -> dict:
    body = {
        "issueId": f"iss-{secrets.token_hex(3)}",
        "issueIdentifier": "ENG-1",
        "project": project_slug,
        "prompt": "do the thing",
        **body,
    }
    resp = api.post("/api/sessions", org.key, json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


JOB_TERMINAL = ("completed", "failed", "cancelled", "expired", "unavailable")


def job(api: Api, job_id: str) -> dict:
    return api.get(f"/jobs/{job_id}").json()["status"]


def wait_job(api: Api, job_id: str, states=JOB_TERMINAL, timeout: float = 20.0) -> dict:
    """Poll a job until it is in one of `states`; returns its status."""
    return wait_for(
        lambda: (s := job(api, job_id))["state"] in states and s,
        timeout=timeout,
        message=f"{job_id} to reach {states}",
    )


def next_due(api: Api, cal_id: str) -> dict:
    """Move the clock to a template's next due time, run one scheduler tick (its task body, in
    this process; the fires go to the real worker), and return the template after it."""
    from dispatchyard.state import clock
    from tasks import tick

    template = job(api, cal_id)
    clock.advance((clock.parse_ms(template["next_due_at"]) - clock.now_ms()) / 1000 + 0.5)
    tick.tick()
    return job(api, cal_id)
