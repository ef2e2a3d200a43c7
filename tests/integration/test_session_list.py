"""GET /api/sessions: the enriched list with health, scoped by projectId, project, or Referer."""

from __future__ import annotations

from dispatchyard.state import clock
from tests.support import records


def listing(api, org, **kw):
    resp = api.get("/api/sessions", org.key, **kw)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_shape_and_scoping(api, org):
    a = records.project(api, org, "alpha")
    records.project(api, org, "beta")
    sa = records.enqueue(api, org, "alpha", issueIdentifier="ENG-1")["sessionId"]
    sb = records.enqueue(api, org, "beta")["sessionId"]
    body = listing(api, org)
    assert body["count"] == 2 and {s["id"] for s in body["sessions"]} == {sa, sb}
    assert body["healthSummary"] == {"green": 2, "yellow": 0, "red": 0}
    assert body["timestamp"].endswith("Z")
    row = next(s for s in body["sessions"] if s["id"] == sa)
    assert row["identifier"] == "ENG-1" and row["projectId"] == a["id"]
    assert row["status"] == "queued" and row["workType"] == "development"
    assert isinstance(row["queuedAt"], int) and row["health"] == {"level": "green", "signals": []}
    for key in (
        "workerId",
        "claimedAt",
        "startedAt",
        "updatedAt",
        "durationMs",
        "costUsd",
        "provider",
        "issueId",
    ):
        assert key in row
    assert [s["id"] for s in listing(api, org, params={"projectId": a["id"]})["sessions"]] == [sa]
    assert [s["id"] for s in listing(api, org, params={"project": "beta"})["sessions"]] == [sb]
    ref = {"Referer": "https://dash.example.com/acme/projects/alpha/sessions"}
    assert [s["id"] for s in listing(api, org, headers=ref)["sessions"]] == [sa]
    ref = {"Referer": "https://dash.example.com/sessions?project=beta"}
    assert [s["id"] for s in listing(api, org, headers=ref)["sessions"]] == [sb]
    # A query parameter wins over the Referer; a malformed Referer means the whole org.
    ref = {"Referer": "https://dash.example.com/projects/alpha"}
    assert [
        s["id"] for s in listing(api, org, params={"project": "beta"}, headers=ref)["sessions"]
    ] == [sb]
    assert listing(api, org, headers={"Referer": "http://[::1"})["count"] == 2


def test_unknown_project_is_404(api, org, r):
    assert api.get("/api/sessions", org.key, params={"project": "ghost"}).status_code == 404
    assert api.get("/api/sessions", org.key, params={"projectId": "prj_x"}).status_code == 404
    resp = api.get(
        "/api/sessions", org.key, headers={"Referer": "https://d.example.com/projects/ghost"}
    )
    assert resp.status_code == 404
    other = records.new_org(r)
    theirs = records.project(api, other, "theirs")
    assert api.get("/api/sessions", org.key, params={"projectId": theirs["id"]}).status_code == 404


def test_other_orgs_sessions_never_listed(api, org, r):
    other = records.new_org(r)
    records.project(api, other)
    records.enqueue(api, other)
    assert listing(api, org)["count"] == 0
    unauthenticated = api.get("/api/sessions")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json() == {"error": "Unauthorized"}
    assert unauthenticated.headers["WWW-Authenticate"] == "Bearer"


def test_health_signals_with_a_moving_clock(api, org):
    records.project(api, org)
    w = records.register(api, org, capacity=5)
    stuck = records.enqueue(api, org)["sessionId"]
    runner = records.enqueue(api, org)["sessionId"]
    api.get(f"/api/workers/{w['workerId']}/poll", w["runtimeToken"])
    api.post(
        f"/api/sessions/{runner}/status",
        w["runtimeToken"],
        json={"workerId": w["workerId"], "status": "running"},
    )
    api.post(
        f"/api/sessions/{runner}/activity",
        w["runtimeToken"],
        json={"workerId": w["workerId"], "toolName": "Bash"},
    )

    def health():
        rows = listing(api, org)["sessions"]
        return {s["id"]: s["health"] for s in rows}

    assert health()[stuck] == {"level": "green", "signals": []}
    clock.advance(200)
    api.post(f"/api/workers/{w['workerId']}/heartbeat", w["runtimeToken"], json={"activeCount": 2})
    clock.advance(101)  # claimed > 5 min; last heartbeat 101 s ago
    h = health()
    assert h[stuck] == {"level": "red", "signals": ["ClaimStuck", "StaleHeartbeat"]}
    api.post(f"/api/workers/{w['workerId']}/heartbeat", w["runtimeToken"], json={"activeCount": 2})
    assert health()[runner] == {"level": "green", "signals": []}
    clock.advance(10 * 60)  # same tool for > 10 min
    api.post(f"/api/workers/{w['workerId']}/heartbeat", w["runtimeToken"], json={"activeCount": 2})
    assert health()[runner] == {"level": "red", "signals": ["ToolLoopStuck"]}
    clock.advance(31 * 60)  # running > 45 min, worker silent > 180 s
    body = listing(api, org)
    h = {s["id"]: s["health"] for s in body["sessions"]}
    assert h[runner]["signals"] == ["LongRunning", "ToolLoopStuck", "WorkerOffline"]
    assert body["healthSummary"] == {"green": 0, "yellow": 0, "red": 2}


def test_limit_and_bad_query(api, org):
    records.project(api, org)
    ids = [records.enqueue(api, org)["sessionId"] for _ in range(3)]
    body = listing(api, org, params={"limit": 2})
    assert [s["id"] for s in body["sessions"]] == ids[:0:-1]  # newest first
    for bad in ({"limit": 0}, {"limit": 1001}, {"limit": "many"}):
        assert api.get("/api/sessions", org.key, params=bad).status_code == 400


def test_project_limited_key_filters_before_the_limit(api, org):
    """A key limited to project A must get a full page of A's sessions even when B's newer ones
    outnumber the page: the project filter selects before the limit applies."""
    a = records.project(api, org, "alpha")
    records.project(api, org, "beta")
    c = records.project(api, org, "gamma")
    ours = []
    for _ in range(7):
        ours.append(records.enqueue(api, org, "alpha")["sessionId"])
        clock.advance(0.002)
    for _ in range(20):
        records.enqueue(api, org, "beta")
        clock.advance(0.002)
    limited = records.key(api, org, "member", projects=[a["id"]])
    resp = api.get("/api/sessions", limited, params={"limit": 5})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [s["id"] for s in body["sessions"]] == ours[::-1][:5]
    assert body["count"] == 5
    # Two projects of the key: their sessions merged newest first, still cut after the filter.
    gammas = []
    for _ in range(3):
        gammas.append(records.enqueue(api, org, "gamma")["sessionId"])
        clock.advance(0.002)
    both = records.key(api, org, "member", projects=[a["id"], c["id"]])
    rows = api.get("/api/sessions", both, params={"limit": 5}).json()["sessions"]
    assert [s["id"] for s in rows] == gammas[::-1] + ours[::-1][:2]
    # Naming a project outside the key is 404, as before.
    assert api.get("/api/sessions", limited, params={"project": "beta"}).status_code == 404
