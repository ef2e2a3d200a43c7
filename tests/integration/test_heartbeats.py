"""POST /api/workers/{id}/heartbeat over HTTP."""

from __future__ import annotations

import datetime as dt

from tests.conftest import LEGACY_KEY
from tests.support import records


def beat(api, w, **body):
    return api.post(
        f"/api/workers/{w['workerId']}/heartbeat",
        w["runtimeToken"],
        json={"activeCount": 0, **body},
    )


def test_heartbeat_shape(api, org):
    records.project(api, org)
    w = records.register(api, org)
    records.enqueue(api, org)
    records.enqueue(api, org)
    resp = beat(
        api,
        w,
        status="busy",
        activeCount=1,
        load={"cpu": 12.5, "memory": 40},
        loadAverage={"one": 0.5, "five": 0.4, "fifteen": 0.3},
        maxSessions=4,
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["acknowledged"] is True
    assert body["pendingWorkCount"] == 2
    assert body["hostStatus"] == {"status": "ok"}
    assert body["pendingMutations"] == []
    served = dt.datetime.fromisoformat(body["serverTime"].replace("Z", "+00:00"))
    assert abs((served - dt.datetime.now(dt.UTC)).total_seconds()) < 5


def test_heartbeat_errors(api, org, legacy_org):
    w = records.register(api, org)
    for body in ({}, {"activeCount": -1}, {"activeCount": "1"}, {"activeCount": 1.5}):
        resp = api.post(f"/api/workers/{w['workerId']}/heartbeat", w["runtimeToken"], json=body)
        assert resp.status_code == 400
        assert resp.json() == {"error": "activeCount must be a non-negative number"}
    assert beat(api, w, status="sleeping").status_code == 400
    assert beat(api, w, load={"cpu": 101}).status_code == 400
    other = records.register(api, org)
    resp = api.post(
        f"/api/workers/{other['workerId']}/heartbeat", w["runtimeToken"], json={"activeCount": 0}
    )
    assert resp.status_code == 403 and resp.json() == {
        "error": "Token does not belong to this worker"
    }
    resp = api.post(f"/api/workers/{w['workerId']}/heartbeat", org.key, json={"activeCount": 0})
    assert resp.status_code == 401 and resp.json() == {"error": "Unauthorized"}
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    api.delete(f"/api/workers/{other['workerId']}", org.key)
    resp = api.post(
        f"/api/workers/{other['workerId']}/heartbeat", LEGACY_KEY, json={"activeCount": 0}
    )
    assert resp.status_code == 404


def test_heartbeat_updates_worker_list(api, org):
    w = records.register(api, org, capacity=4)
    beat(api, w, status="draining", activeCount=3)
    row = next(
        x for x in api.get("/api/workers", org.key).json()["workers"] if x["id"] == w["workerId"]
    )
    assert row["status"] == "draining" and row["activeCount"] == 3


def test_allowlist_kept_and_requested_when_hash_changes(api, org, r):
    from dispatchyard.state import keys

    w = records.register(api, org)
    lst = [{"id": "prj_1", "repository": "github.com/a/b"}]
    body = beat(api, w, allowlistHash="h1", allowlist=lst).json()
    assert "allowlistRequested" not in body
    assert r.hget(keys.host(w["workerId"]), "allowlistHash") == "h1"
    assert "allowlistRequested" not in beat(api, w, allowlistHash="h1").json()
    assert beat(api, w, allowlistHash="h2").json()["allowlistRequested"] is True


def test_legacy_key_heartbeats_only_its_orgs_hosts(api, legacy_org, org):
    resp = api.post("/api/workers/register", LEGACY_KEY, json={"hostname": "old", "capacity": 1})
    wid = resp.json()["workerId"]
    ok = api.post(f"/api/workers/{wid}/heartbeat", LEGACY_KEY, json={"activeCount": 0})
    assert ok.status_code == 200
    foreign = records.register(api, org)
    resp = api.post(
        f"/api/workers/{foreign['workerId']}/heartbeat", LEGACY_KEY, json={"activeCount": 0}
    )
    assert resp.status_code == 404


def test_revoked_registering_key_makes_the_host_unauthorized(api, org):
    records.project(api, org)
    resp = api.post(
        f"/api/org/{org.id}/keys",
        org.key,
        json={"name": "daemon", "role": "member", "scopes": ["worker:register"]},
    )
    key_id, key = resp.json()["id"], resp.json()["key"]
    w = api.post("/api/workers/register", key, json={"hostname": "h", "capacity": 2}).json()
    records.enqueue(api, org)
    api.delete(f"/api/org/{org.id}/keys/{key_id}", org.key)
    body = beat(api, w).json()
    assert body["hostStatus"] == {"status": "unauthorized", "recommendedAction": "reregister"}
    polled = api.get(f"/api/workers/{w['workerId']}/poll", w["runtimeToken"]).json()
    assert polled["work"] == []
