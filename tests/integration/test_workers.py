"""Worker registration, runtime tokens, poll, deregistration and the worker list over HTTP."""

from __future__ import annotations

import jwt

from tests.conftest import LEGACY_KEY
from tests.support import records


def assert_401(resp) -> None:
    """Refused as no credential at all: the platform envelope and the Bearer challenge."""
    assert resp.status_code == 401, resp.text
    assert resp.json() == {"error": "Unauthorized"}
    assert resp.headers["WWW-Authenticate"] == "Bearer"


def test_register_shape_and_token_claims(api, org):
    body = records.register(api, org, capacity=3, version="1.2.3", region="eu")
    assert body["workerId"].startswith("wkr_") and len(body["workerId"]) == 20
    assert body["heartbeatInterval"] == 30000 and body["pollInterval"] == 5000
    assert body["runtimeTokenExpiresAt"].endswith("Z")
    header = jwt.get_unverified_header(body["runtimeToken"])
    assert header["alg"] == "HS256"
    claims = jwt.decode(body["runtimeToken"], options={"verify_signature": False})
    assert claims["sub"] == body["workerId"] and claims["org"] == org.id
    assert claims["proj"] == "all" and claims["iss"] == "dispatchyard"
    assert set(claims["scope"]) == {"worker:poll", "worker:heartbeat", "worker:session"}
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["jti"] and claims["reg"].startswith("key_")


def test_register_errors(api, org):
    cases = [
        ({"capacity": 1}, "hostname is required"),
        ({"hostname": "", "capacity": 1}, "hostname is required"),
        ({"hostname": "h"}, "capacity must be a positive number"),
        ({"hostname": "h", "capacity": 0}, "capacity must be a positive number"),
        ({"hostname": "h", "capacity": -3}, "capacity must be a positive number"),
        ({"hostname": "h", "capacity": "2"}, "capacity must be a positive number"),
        (
            {"hostname": "h", "capacity": 1, "projects": "all"},
            "projects must be an array of strings",
        ),
        ({"hostname": "h", "capacity": 1, "projects": [1]}, "projects must be an array of strings"),
    ]
    for body, message in cases:
        resp = api.post("/api/workers/register", org.key, json=body)
        assert resp.status_code == 400, body
        assert resp.json() == {"error": message}, body


def test_same_machine_id_keeps_worker_id(api, org, r):
    first = records.register(api, org, machineId="m-1")
    second = records.register(api, org, machineId="m-1", capacity=9)
    assert first["workerId"] == second["workerId"]
    other = records.register(api, records.new_org(r), machineId="m-1")
    assert other["workerId"] != first["workerId"]


def test_register_needs_register_scope(api, org):
    member = records.key(api, org, "member")
    resp = api.post("/api/workers/register", member, json={"hostname": "h", "capacity": 1})
    assert resp.status_code == 403
    assert resp.json() == {"error": "Requires scope worker:register"}
    daemon_key = records.key(api, org, "member", scopes=["worker:register"])
    resp = api.post("/api/workers/register", daemon_key, json={"hostname": "h", "capacity": 1})
    assert resp.status_code == 201


def test_register_with_projects_by_slug_or_id(api, org):
    a = records.project(api, org, "alpha")
    records.project(api, org, "beta")
    body = records.register(api, org, projects=["beta", a["id"]])
    claims = jwt.decode(body["runtimeToken"], options={"verify_signature": False})
    assert sorted(claims["proj"]) == sorted([a["id"], org.projects["beta"]["id"]])
    resp = api.post(
        "/api/workers/register",
        org.key,
        json={"hostname": "h", "capacity": 1, "projects": ["nope"]},
    )
    assert resp.status_code == 400
    assert resp.json() == {"error": "projects: unknown project nope"}


def test_refresh_token(api, org):
    w = records.register(api, org)
    resp = api.post(f"/api/workers/{w['workerId']}/refresh-token", org.key)
    assert resp.status_code == 200
    new = resp.json()["runtimeToken"]
    assert new != w["runtimeToken"]
    assert api.get(f"/api/workers/{w['workerId']}/poll", new).status_code == 200
    # Another key of the org that did not register it (and is not admin) may not refresh it.
    member = records.key(api, org, "member", scopes=["worker:register"])
    resp = api.post(f"/api/workers/{w['workerId']}/refresh-token", member)
    assert resp.status_code == 403
    assert resp.json() == {"error": "Only the registering key may refresh this worker's token"}
    # A runtime JWT is not an API key.
    assert_401(api.post(f"/api/workers/{w['workerId']}/refresh-token", w["runtimeToken"]))


def test_poll_takes_up_to_five_and_respects_capacity(api, org):
    records.project(api, org)
    w = records.register(api, org, capacity=7)
    ids = [records.enqueue(api, org)["sessionId"] for _ in range(10)]
    first = api.get(f"/api/workers/{w['workerId']}/poll", w["runtimeToken"]).json()
    assert first["preClaimed"] is True
    assert first["claimedSessionIds"] == ids[:5]
    assert [item["sessionId"] for item in first["work"]] == ids[:5]
    second = api.get(f"/api/workers/{w['workerId']}/poll", w["runtimeToken"]).json()
    assert second["claimedSessionIds"] == ids[5:7]  # capacity 7
    third = api.get(f"/api/workers/{w['workerId']}/poll", w["runtimeToken"]).json()
    assert third["work"] == [] and third["claimedSessionIds"] == []


def test_poll_priority_then_fifo(api, org):
    records.project(api, org)
    w = records.register(api, org, capacity=20)
    low = records.enqueue(api, org, priority=5)["sessionId"]
    mid1 = records.enqueue(api, org, priority=3)["sessionId"]
    high = records.enqueue(api, org, priority=1)["sessionId"]
    mid2 = records.enqueue(api, org, priority=3)["sessionId"]
    got = []
    for _ in range(2):
        got += api.get(f"/api/workers/{w['workerId']}/poll", w["runtimeToken"]).json()[
            "claimedSessionIds"
        ]
    assert got == [high, mid1, mid2, low]


def test_poll_only_serves_the_workers_projects(api, org):
    records.project(api, org, "alpha")
    records.project(api, org, "beta")
    w = records.register(api, org, projects=["beta"])
    records.enqueue(api, org, "alpha")
    b = records.enqueue(api, org, "beta")["sessionId"]
    got = api.get(f"/api/workers/{w['workerId']}/poll", w["runtimeToken"]).json()
    assert got["claimedSessionIds"] == [b]


def test_poll_never_crosses_orgs(api, org, r):
    other = records.new_org(r)
    records.project(api, other)
    records.enqueue(api, other)
    w = records.register(api, org)
    got = api.get(f"/api/workers/{w['workerId']}/poll", w["runtimeToken"]).json()
    assert got["work"] == []


def test_poll_is_for_the_tokens_own_worker(api, org):
    a = records.register(api, org)
    b = records.register(api, org)
    resp = api.get(f"/api/workers/{b['workerId']}/poll", a["runtimeToken"])
    assert resp.status_code == 403
    assert resp.json() == {"error": "Token does not belong to this worker"}
    assert_401(api.get(f"/api/workers/{a['workerId']}/poll", org.key))


def test_deregister_requeues_claimed_and_revokes_tokens(api, org):
    records.project(api, org)
    w = records.register(api, org)
    token = w["runtimeToken"]
    ids = [records.enqueue(api, org, priority=p)["sessionId"] for p in (2, 4)]
    polled = api.get(f"/api/workers/{w['workerId']}/poll", token).json()["claimedSessionIds"]
    assert polled == ids
    # One goes to running; only the claimed-not-running one returns to the queue.
    resp = api.post(
        f"/api/sessions/{ids[0]}/status",
        token,
        json={"workerId": w["workerId"], "status": "running"},
    )
    assert resp.status_code == 200
    resp = api.delete(f"/api/workers/{w['workerId']}", token)
    assert resp.status_code == 200
    assert resp.json() == {"deregistered": True, "unclaimedSessions": [ids[1]]}
    # Its token is refused from now on.
    assert_401(api.get(f"/api/workers/{w['workerId']}/poll", token))
    # The session is back with its original priority: a new worker gets it.
    w2 = records.register(api, org)
    got = api.get(f"/api/workers/{w2['workerId']}/poll", w2["runtimeToken"]).json()
    assert got["claimedSessionIds"] == [ids[1]]
    assert got["work"][0]["priority"] == 4
    # Gone from the list; a second deregistration is 404.
    listed = api.get("/api/workers", org.key).json()["workers"]
    assert w["workerId"] not in [x["id"] for x in listed]
    resp = api.delete(f"/api/workers/{w['workerId']}", org.key)
    assert resp.status_code == 404 and resp.json() == {"error": "Worker not found"}


def test_list_workers_and_summary(api, org):
    records.project(api, org)
    a = records.register(api, org, capacity=4, version="9.9")
    records.register(api, org, capacity=2)
    for _ in range(3):
        records.enqueue(api, org)
    api.get(f"/api/workers/{a['workerId']}/poll", a["runtimeToken"])
    records.enqueue(api, org)
    body = api.get("/api/workers", org.key).json()
    assert body["summary"] == {
        "totalWorkers": 2,
        "activeWorkers": 2,
        "totalCapacity": 6,
        "totalActive": 3,
        "availableCapacity": 3,
        "queueLength": 1,
    }
    row = next(w for w in body["workers"] if w["id"] == a["workerId"])
    assert row["status"] == "active" and row["hostStatus"] == {"status": "ok"}
    assert row["version"] == "9.9" and row["activeCount"] == 3 and row["projects"] == "all"
    assert row["registeredAt"].endswith("Z") and row["lastHeartbeat"].endswith("Z")


def test_legacy_worker_key(api, legacy_org, r):
    records.project(api, legacy_org, "legacy-app")
    resp = api.post("/api/workers/register", LEGACY_KEY, json={"hostname": "old", "capacity": 1})
    assert resp.status_code == 201
    wid = resp.json()["workerId"]
    records.enqueue(api, legacy_org, "legacy-app")
    got = api.get(f"/api/workers/{wid}/poll", LEGACY_KEY)
    assert got.status_code == 200 and len(got.json()["work"]) == 1
    # The legacy key is not an API key.
    assert_401(api.get("/api/workers", LEGACY_KEY))
    # It acts for the default org only.
    other = records.register(api, records.new_org(r))
    resp = api.get(f"/api/workers/{other['workerId']}/poll", LEGACY_KEY)
    assert resp.status_code == 404 and resp.json() == {"error": "Worker not found"}
