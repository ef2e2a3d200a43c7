"""Projects and API keys over HTTP: roles, scopes, revocation, secrets never stored."""

from __future__ import annotations

import re

from tests.support import records

HIGHER_ROLE = "A key cannot mint a key of a higher role than its own"


def test_project_create_and_list(api, org):
    resp = api.post(
        f"/api/org/{org.id}/projects",
        org.key,
        json={"slug": "web-app", "name": "Web App", "repository": "github.com/acme/web"},
    )
    assert resp.status_code == 201
    project = resp.json()["project"]
    assert project["id"].startswith("prj_")
    assert project["slug"] == "web-app"
    assert project["repository"] == "github.com/acme/web"

    listed = api.get(f"/api/org/{org.id}/projects", org.key).json()["projects"]
    assert [p["id"] for p in listed] == [project["id"]]


def test_project_slug_rules_and_duplicates(api, org):
    for bad in ["Web", "-x", "a" * 64, "a_b", ""]:
        resp = api.post(f"/api/org/{org.id}/projects", org.key, json={"slug": bad, "name": "n"})
        assert resp.status_code == 400, bad
        assert "slug" in resp.json()["error"]
    records.project(api, org, "dup")
    resp = api.post(f"/api/org/{org.id}/projects", org.key, json={"slug": "dup", "name": "n"})
    assert resp.status_code == 409


def test_project_create_needs_admin(api, org):
    member = records.key(api, org, "member")
    resp = api.post(f"/api/org/{org.id}/projects", member, json={"slug": "x", "name": "x"})
    assert resp.status_code == 403
    assert resp.json() == {"error": "Requires role admin or higher"}
    admin = records.key(api, org, "admin")
    resp = api.post(f"/api/org/{org.id}/projects", admin, json={"slug": "x", "name": "x"})
    assert resp.status_code == 201


def test_other_org_is_404(api, org, r):
    other = records.new_org(r)
    for method, path in [
        ("GET", f"/api/org/{other.id}/projects"),
        ("POST", f"/api/org/{other.id}/projects"),
        ("GET", f"/api/org/{other.id}/keys"),
        ("POST", f"/api/org/{other.id}/keys"),
    ]:
        resp = api.request(method, path, org.key, json={"slug": "x", "name": "x"})
        assert resp.status_code == 404, (method, path)
        assert resp.json() == {"error": "Organization not found"}


def test_key_create_shape_and_shown_once(api, org):
    resp = api.post(
        f"/api/org/{org.id}/keys",
        org.key,
        json={"name": "ci", "role": "member", "scopes": ["worker:register"]},
    )
    assert resp.status_code == 201
    body = resp.json()
    assert re.fullmatch(r"rsk_live_[0-9a-f]{64}", body["key"])
    assert body["keyPrefix"] == body["key"][:12]
    assert body["id"].startswith("key_")
    assert body["role"] == "member" and body["projects"] == "all"
    assert body["scopes"] == ["worker:register"]
    listed = api.get(f"/api/org/{org.id}/keys", org.key).json()["keys"]
    assert body["id"] in [k["id"] for k in listed]
    assert all("key" not in k and "hash" not in k for k in listed)


def test_key_cannot_mint_higher_role(api, org):
    admin = records.key(api, org, "admin")
    resp = api.post(f"/api/org/{org.id}/keys", admin, json={"name": "x", "role": "owner"})
    assert resp.status_code == 403 and resp.json() == {"error": HIGHER_ROLE}
    resp = api.post(f"/api/org/{org.id}/keys", admin, json={"name": "x", "role": "admin"})
    assert resp.status_code == 201
    member = records.key(api, org, "member")
    resp = api.post(f"/api/org/{org.id}/keys", member, json={"name": "x", "role": "member"})
    assert resp.status_code == 403
    assert resp.json() == {"error": "Requires role admin or scope org_keys:write"}


def test_org_keys_write_scope_lets_a_member_mint_members_only(api, org):
    writer = records.key(api, org, "member", scopes=["org_keys:write"])
    resp = api.post(f"/api/org/{org.id}/keys", writer, json={"name": "x", "role": "member"})
    assert resp.status_code == 201
    resp = api.post(f"/api/org/{org.id}/keys", writer, json={"name": "x", "role": "admin"})
    assert resp.status_code == 403 and resp.json() == {"error": HIGHER_ROLE}
    # It cannot hand out scopes it does not hold.
    resp = api.post(
        f"/api/org/{org.id}/keys",
        writer,
        json={"name": "x", "role": "member", "scopes": ["worker:register"]},
    )
    assert resp.status_code == 403
    assert resp.json() == {"error": "A key cannot grant scopes it does not hold"}


def test_key_body_validation(api, org):
    for body in [
        {},
        {"name": "x", "role": "superuser"},
        {"name": "x", "scopes": ["nope"]},
        {"name": "x", "projects": []},
        {"name": "x", "projects": "some"},
        {"name": "x", "projects": ["prj_missing"]},
        {"name": 5},
    ]:
        resp = api.post(f"/api/org/{org.id}/keys", org.key, json=body)
        assert resp.status_code == 400, body
        assert resp.json()["error"]


def test_revoked_key_refused_from_next_request(api, org):
    resp = api.post(f"/api/org/{org.id}/keys", org.key, json={"name": "temp", "role": "member"})
    key_id, secret = resp.json()["id"], resp.json()["key"]
    assert api.get(f"/api/org/{org.id}/projects", secret).status_code == 200
    resp = api.delete(f"/api/org/{org.id}/keys/{key_id}", org.key)
    assert resp.status_code == 200 and resp.json() == {"revoked": True}
    resp = api.get(f"/api/org/{org.id}/projects", secret)
    assert resp.status_code == 401 and resp.json() == {"error": "Unauthorized"}
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    resp = api.delete(f"/api/org/{org.id}/keys/key_nope", org.key)
    assert resp.status_code == 404 and resp.json() == {"error": "Key not found"}


def test_no_plaintext_key_anywhere_in_redis(api, org, r):
    secrets_seen = [org.key, records.key(api, org, "member"), records.key(api, org, "admin")]
    records.project(api, org)
    found = []
    for key in r.scan_iter(count=1000):
        kind = r.type(key)
        if kind == "string":
            blobs = [r.get(key)]
        elif kind == "hash":
            blobs = [f"{k}={v}" for k, v in r.hgetall(key).items()]
        elif kind == "set":
            blobs = list(r.smembers(key))
        elif kind == "zset":
            blobs = list(r.zrange(key, 0, -1))
        elif kind == "list":
            blobs = list(r.lrange(key, 0, -1))
        else:
            blobs = []
        blobs.append(key)
        for blob in blobs:
            if any(s in (blob or "") for s in secrets_seen):
                found.append(key)
    assert found == []
