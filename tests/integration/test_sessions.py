"""The session queue over HTTP: enqueue, cloud-runner detail, claim, status, activity, nack."""

from __future__ import annotations

import json

import pytest

from tests.support import records


@pytest.fixture
def setup(api, org):
    records.project(api, org, "app", repository="github.com/acme/app")
    w = records.register(api, org)
    return org, w


def assert_401(resp) -> None:
    """Refused as no credential at all: the platform envelope and the Bearer challenge."""
    assert resp.status_code == 401, resp.text
    assert resp.json() == {"error": "Unauthorized"}
    assert resp.headers["WWW-Authenticate"] == "Bearer"


def poll(api, w):
    return api.get(f"/api/workers/{w['workerId']}/poll", w["runtimeToken"]).json()


def status(api, w, sid, value, **extra):
    return api.post(
        f"/api/sessions/{sid}/status",
        w["runtimeToken"],
        json={"workerId": w["workerId"], "status": value, **extra},
    )


def test_enqueue_shape_and_redis_layout(api, setup, r):
    org, _ = setup
    resp = api.post(
        "/api/sessions",
        org.key,
        json={
            "issueId": "i1",
            "issueIdentifier": "ENG-7",
            "project": "app",
            "prompt": "p",
            "priority": 2,
        },
    )
    assert resp.status_code == 201
    body = resp.json()
    sid = body["sessionId"]
    assert sid.startswith("ses_") and body["status"] == "queued"
    assert isinstance(body["queuedAt"], int)
    assert r.zscore("work:queue", sid) == 2 * 10**13 + body["queuedAt"]
    payload = json.loads(r.hget("work:items", sid))
    assert payload["authToken"].startswith("rst_") and payload["workType"] == "development"
    assert r.hget(f"agent:session:{sid}", "status") == "queued"
    assert not r.exists(f"work:claim:{sid}")


def test_tracker_session_id_is_the_session_id_and_unique(api, setup):
    org, _ = setup
    body = records.enqueue(api, org, trackerSessionId="lin-abc-123")
    assert body["sessionId"] == "lin-abc-123"
    resp = api.post(
        "/api/sessions",
        org.key,
        json={
            "issueId": "i",
            "issueIdentifier": "E-1",
            "project": "app",
            "prompt": "p",
            "linearSessionId": "lin-abc-123",
        },
    )
    assert resp.status_code == 409


def test_enqueue_errors(api, setup, r):
    org, _ = setup
    base = {"issueId": "i", "issueIdentifier": "E-1", "project": "app", "prompt": "p"}
    for body, status_code in [
        ({**base, "priority": 0}, 400),
        ({**base, "priority": 6}, 400),
        ({**base, "priority": "1"}, 400),
        ({**base, "workType": "gardening"}, 400),
        ({k: v for k, v in base.items() if k != "prompt"}, 400),
        ({k: v for k, v in base.items() if k != "project"}, 400),
        ({**base, "project": "ghost"}, 404),
        ({**base, "project": None, "projectId": "prj_0000000000000000"}, 404),
        ({**base, "kits": []}, 400),
        ({**base, "trackerSessionId": "../../etc"}, 400),
    ]:
        resp = api.post("/api/sessions", org.key, json=body)
        assert resp.status_code == status_code, (body, resp.text)
        assert "error" in resp.json()
    auditor = records.key(api, org, "auditor")
    assert api.post("/api/sessions", auditor, json=base).status_code == 403
    other = records.new_org(r)
    records.project(api, other, "app")
    # A key of another org names its own project namespace: "app" there is not ours.
    assert api.post("/api/sessions", other.key, json=base).status_code == 201


def test_project_limited_key(api, setup):
    org, _ = setup
    beta = records.project(api, org, "beta")
    limited = records.key(api, org, "member", projects=[beta["id"]])
    base = {"issueId": "i", "issueIdentifier": "E-1", "prompt": "p"}
    assert api.post("/api/sessions", limited, json={**base, "project": "beta"}).status_code == 201
    assert api.post("/api/sessions", limited, json={**base, "project": "app"}).status_code == 403


def test_cloud_runner_detail_only_while_queued(api, setup, r):
    org, w = setup
    sid = records.enqueue(api, org, systemPrompt="be careful", kits={"a": 1})["sessionId"]
    resp = api.get(f"/api/daemon/sessions/{sid}", w["runtimeToken"])
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.json()
    assert set(body) == {
        "sessionId",
        "issueId",
        "issueIdentifier",
        "priority",
        "queuedAt",
        "prompt",
        "workType",
        "sourceSessionId",
        "projectName",
        "repository",
        "kits",
        "platformUrl",
        "organizationId",
        "linearSessionId",
        "providerSessionId",
        "authToken",
        "systemPrompt",
    }
    assert body["repository"] == "github.com/acme/app"
    assert body["platformUrl"] == "https://platform.test"
    assert body["organizationId"] == org.id and body["kits"] == {"a": 1}
    assert body["authToken"].startswith("rst_") and body["systemPrompt"] == "be careful"
    # Without a token, with an API key, or with a bad token: 401.
    assert_401(api.get(f"/api/daemon/sessions/{sid}"))
    assert_401(api.get(f"/api/daemon/sessions/{sid}", org.key))
    assert_401(api.get(f"/api/daemon/sessions/{sid}", "a.b.c"))
    # Another org's worker: 404, same body as unknown.
    other = records.register(api, records.new_org(r))
    resp = api.get(f"/api/daemon/sessions/{sid}", other["runtimeToken"])
    assert resp.status_code == 404 and resp.json() == {"error": "Session not found"}
    resp = api.get("/api/daemon/sessions/nope", w["runtimeToken"])
    assert resp.status_code == 404 and resp.json() == {"error": "Session not found"}
    # After claim: 404.
    assert poll(api, w)["claimedSessionIds"] == [sid]
    resp = api.get(f"/api/daemon/sessions/{sid}", w["runtimeToken"])
    assert resp.status_code == 404 and resp.json() == {"error": "Session not found"}
    assert resp.headers["Cache-Control"] == "no-store"
    assert r.hget("work:items", sid) is None


def test_claim_named_session(api, setup, r):
    org, w = setup
    sid = records.enqueue(api, org)["sessionId"]
    resp = api.post(
        f"/api/sessions/{sid}/claim", w["runtimeToken"], json={"workerId": w["workerId"]}
    )
    body = resp.json()
    assert resp.status_code == 200 and body["claimed"] is True
    assert body["session"]["status"] == "claimed" and body["session"]["workerId"] == w["workerId"]
    assert body["work"]["sessionId"] == sid
    assert r.get(f"work:claim:{sid}") == w["workerId"]
    assert r.zscore("work:queue", sid) is None and r.hget("work:items", sid) is None
    again = api.post(
        f"/api/sessions/{sid}/claim", w["runtimeToken"], json={"workerId": w["workerId"]}
    )
    assert again.status_code == 200 and again.json() == {
        "claimed": False,
        "reason": "Work item not available or already claimed",
    }
    # A session that does not exist (or is another org's) is not "unavailable": it is 404.
    for unknown in ("ses_" + "0" * 24, "-bad-shape"):
        resp = api.post(
            f"/api/sessions/{unknown}/claim", w["runtimeToken"], json={"workerId": w["workerId"]}
        )
        assert resp.status_code == 404 and resp.json() == {"error": "Session not found"}


def test_claim_unauthorized_project(api, setup):
    org, _ = setup
    beta = records.project(api, org, "beta")
    w = records.register(api, org, projects=["beta"])
    sid = records.enqueue(api, org, "app")["sessionId"]
    resp = api.post(
        f"/api/sessions/{sid}/claim", w["runtimeToken"], json={"workerId": w["workerId"]}
    )
    app_id = org.projects["app"]["id"]
    assert resp.status_code == 200 and resp.json() == {
        "claimed": False,
        "reason": f"Worker not authorized for project {app_id}",
    }
    assert beta["id"] != app_id


def test_claim_for_another_worker_is_403(api, setup):
    org, w = setup
    other = records.register(api, org)
    sid = records.enqueue(api, org)["sessionId"]
    resp = api.post(
        f"/api/sessions/{sid}/claim", w["runtimeToken"], json={"workerId": other["workerId"]}
    )
    assert resp.status_code == 403
    assert resp.json() == {"error": "Token does not belong to this worker"}


def test_status_machine(api, setup):
    org, w = setup
    sid = records.enqueue(api, org)["sessionId"]
    poll(api, w)
    # claimed -> completed | finalizing and running -> completed are allowed since the real
    # runner takes those shortcuts (tests/integration/test_donmai_client.py).
    resp = status(api, w, sid, "running", providerSessionId="claude-1", worktreePath="/w/x")
    assert resp.status_code == 200
    session = resp.json()["session"]
    assert resp.json()["updated"] is True
    assert session["status"] == "running" and session["startedAt"]
    assert session["providerSessionId"] == "claude-1" and session["worktreePath"] == "/w/x"
    assert status(api, w, sid, "running").status_code == 200  # a retried report is idempotent
    assert status(api, w, sid, "finalizing").status_code == 200
    resp = status(api, w, sid, "completed", totalCostUsd=1.25, inputTokens=10, outputTokens=20)
    session = resp.json()["session"]
    assert session["status"] == "completed" and session["costUsd"] == 1.25
    assert session["inputTokens"] == 10 and session["durationMs"] >= 0
    for later in ("running", "failed", "finalizing"):
        assert status(api, w, sid, later).status_code == 409
    for bad in ("queued", "claimed", "done"):
        assert status(api, w, sid, bad).status_code == 400


def test_claimed_may_fail_or_stop_with_error(api, setup):
    org, w = setup
    a = records.enqueue(api, org)["sessionId"]
    b = records.enqueue(api, org)["sessionId"]
    poll(api, w)
    resp = status(api, w, a, "failed", error={"message": "clone failed"})
    assert resp.status_code == 200 and resp.json()["session"]["error"] == {
        "message": "clone failed"
    }
    assert status(api, w, b, "stopped").status_code == 200


def test_status_of_another_workers_session(api, setup, r):
    org, w = setup
    other = records.register(api, org)
    sid = records.enqueue(api, org)["sessionId"]
    poll(api, w)
    resp = status(api, other, sid, "running")
    assert resp.status_code == 403
    assert resp.json() == {"error": "Session belongs to another worker"}
    stranger = records.register(api, records.new_org(r))
    resp = status(api, stranger, sid, "running")
    assert resp.status_code == 404 and resp.json() == {"error": "Session not found"}


def test_activity_records_tool(api, setup, r):
    org, w = setup
    sid = records.enqueue(api, org)["sessionId"]
    poll(api, w)
    resp = api.post(
        f"/api/sessions/{sid}/activity",
        w["runtimeToken"],
        json={"workerId": w["workerId"], "toolName": "Bash"},
    )
    assert resp.status_code == 200
    since = r.hget(f"agent:session:{sid}", "toolSince")
    api.post(
        f"/api/sessions/{sid}/activity",
        w["runtimeToken"],
        json={"workerId": w["workerId"], "toolName": "Bash"},
    )
    assert r.hget(f"agent:session:{sid}", "toolSince") == since  # same tool: since unchanged
    assert r.hget(f"agent:session:{sid}", "lastTool") == "Bash"
    resp = api.post(
        f"/api/sessions/{sid}/activity", w["runtimeToken"], json={"workerId": w["workerId"]}
    )
    assert resp.status_code == 400


def test_nack_requeues_with_original_priority(api, setup, r):
    org, w = setup
    sid = records.enqueue(api, org, priority=2)["sessionId"]
    original = r.zscore("work:queue", sid)
    poll(api, w)
    resp = api.post(
        f"/api/sessions/{sid}/nack", w["runtimeToken"], json={"workerId": w["workerId"]}
    )
    assert resp.json() == {"nacked": True, "sessionId": sid, "requeued": True}
    assert r.zscore("work:queue", sid) == original
    assert r.hget(f"agent:session:{sid}", "status") == "queued"
    assert not r.exists(f"work:claim:{sid}")
    assert api.get(f"/api/daemon/sessions/{sid}", w["runtimeToken"]).status_code == 200
    # Not claimed any more: a second nack is 409; a running session cannot be nacked.
    resp = api.post(
        f"/api/sessions/{sid}/nack", w["runtimeToken"], json={"workerId": w["workerId"]}
    )
    assert resp.status_code == 409
    poll(api, w)
    status(api, w, sid, "running")
    resp = api.post(
        f"/api/sessions/{sid}/nack", w["runtimeToken"], json={"workerId": w["workerId"]}
    )
    assert resp.status_code == 409
