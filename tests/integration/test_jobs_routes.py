"""/jobs (and /work) route shapes and status codes of the durable jobs API (docs/api.md) — without
firing: jobs here are due later, have no target, or are templates."""

from __future__ import annotations

import base64
import json
import secrets

import pytest

from dispatchyard.state import clock
from tests.support.writes import created, state_keys

LATER = "2999-01-01T00:00:00+00:00"

STATUS_KEYS = {
    "job_id",
    "work_id",
    "title",
    "kind",
    "state",
    "state_reason",
    "phase",
    "progress",
    "progress_events",
    "owner_peer_id",
    "assigned_peer_id",
    "repowire_session_id",
    "correlation_id",
    "circle",
    "created_by_peer_id",
    "source_kind",
    "source_id",
    "scope",
    "visibility",
    "created_at",
    "updated_at",
    "deadline_at",
    "expires_at",
    "result_summary",
    "cancel_requested",
    "cancel_requested_at",
    "cancel_requested_by_peer_id",
    "cancellation_reason",
    "protocol_cancel",
    "request",
    "provenance",
    "execution",
    "runner",
    "due_at",
    "links",
}


def create(api, **body):
    resp = api.post("/jobs", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.mark.parametrize("prefix", ["/jobs", "/work"])
def test_create_one_shot_shape(api, prefix, tmp_path):
    resp = api.post(
        prefix,
        json={
            "title": "nightly",
            "prompt": "do it",
            "path": str(tmp_path),
            "backend": "shell",
            "due_at": LATER,
            "circle": "team",
        },
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["job_id"] == body["work_id"] == body["status"]["job_id"]
    assert body["job_id"].startswith("work-") and len(body["job_id"]) == 17
    status = body["status"]
    assert set(status) >= STATUS_KEYS
    assert status["state"] == "queued" and status["due_at"] == LATER
    execution = status["execution"]
    assert execution["process_scope"] == "per_fire" and execution["continuity"] == "fresh"
    assert execution["prompt"] == {"body": "do it", "source": "inline"}
    assert execution["target"] == {"path": str(tmp_path), "backend": "shell"}
    assert execution["delivery"] == {"kind": "ask"}
    assert execution["schedule"] == {"due_at": LATER}
    assert status["created_at"].endswith("+00:00")
    assert api.get(f"{prefix}/{body['job_id']}").json() == {"status": status}
    assert api.get(f"{prefix}/{body['job_id']}/status").json() == {"status": status}


def test_create_defaults(api, tmp_path):
    persistent = create(
        api,
        title="t",
        due_at=LATER,
        path=str(tmp_path),
        backend="codex",
        assigned_peer_id="repow-global-0123abcd",
    )["status"]["execution"]
    assert "process_scope" not in persistent and "continuity" not in persistent
    titled = create(api, title="only a title", due_at=LATER)["status"]["execution"]
    assert titled["prompt"] == {"body": "only a title", "source": "title"}
    explicit = create(api, title="t", due_at=LATER, process_scope="per-fire", continuity="resume")[
        "status"
    ]["execution"]
    assert explicit["process_scope"] == "per_fire" and explicit["continuity"] == "resume"
    prompt_file = tmp_path / "prompt.md"
    prompt_file.write_text("from a file")
    filed = create(api, due_at=LATER, prompt_file=str(prompt_file))["status"]["execution"]
    assert filed["prompt"]["body"] == "from a file" and filed["prompt"]["source"] == "file"


def test_create_template_shape(api, tmp_path):
    resp = api.post(
        "/jobs",
        json={
            "title": "hourly",
            "prompt": "p",
            "path": str(tmp_path),
            "backend": "claude-code",
            "cron": "@hourly",
            "timezone": "Europe/Paris",
        },
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["calendar_id"] == body["recurring_id"] == body["calendar"]["calendar_id"]
    assert body["calendar_id"].startswith("cal-") and len(body["calendar_id"]) == 16
    cal = body["calendar"]
    assert cal["state"] == "active" and cal["cron"] == "@hourly"
    assert cal["timezone"] == "Europe/Paris" and cal["overlap"] == "skip"
    assert cal["execution"]["continuity"] == "resume"  # the recurring default
    assert cal["next_due_at"].endswith(":00:00+00:00") or cal["next_due_at"].endswith(":00+00:00")
    assert cal["last_occurrence_work_id"] is None and cal["last_materialized_at"] is None
    got = api.get(f"/jobs/{body['calendar_id']}").json()["status"]
    assert got["calendar_id"] == body["calendar_id"]
    result = api.get(f"/jobs/{body['calendar_id']}/result").json()["result"]
    assert result["result_state"] == "recurring_template"
    assert result["calendar"]["calendar_id"] == body["calendar_id"]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"due_at": LATER, "cron": "* * * * *"}, 400, "provide due_at or cron, not both"),
        ({"process_scope": "forever"}, 400, "process_scope must be one of: per_fire, persistent"),
        ({"continuity": "maybe"}, 400, "continuity must be one of: resume, fresh"),
        ({"cron": "61 * * * *"}, 400, None),
        ({"cron": "0 0 30 2 *"}, 400, None),
        ({"cron": "every day"}, 400, None),
        ({"cron": "@reboot"}, 400, None),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, 400, "unknown timezone: Mars/Olympus"),
        ({"due_at": "tomorrow-ish"}, 400, "due_at must be an ISO-8601 timestamp"),
        ({"expires_at": "x"}, 400, "expires_at must be an ISO-8601 timestamp"),
        ({"overlap": "pile"}, 400, "overlap must be one of: skip, buffer_one, allow"),
        (
            {"assigned_peer_id": "nobody"},
            404,
            {"error": "assigned_peer_not_found", "peer": "nobody"},
        ),
        ({"prompt_file": "/nonexistent/prompt.md"}, 400, None),
    ],
)
def test_create_errors(api, r, body, status, detail):
    before = state_keys(r)
    resp = api.post("/jobs", json={"title": "t", **body})
    assert resp.status_code == status, resp.text
    if detail is not None:
        assert resp.json() == {"detail": detail}
    else:
        assert isinstance(resp.json()["detail"], str)
    assert not created(r, before)


@pytest.mark.parametrize(
    "body",
    [
        {"title": "t", "surprise": 1},
        {"title": ["t"]},
        {"backend": "cobol"},
        {"request": "not an object"},
        {"machine": "../etc"},
    ],
)
def test_create_validation_is_422(api, body):
    resp = api.post("/jobs", json=body)
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"]
    assert isinstance(detail, list) and {"loc", "msg", "type"} <= set(detail[0])


def test_malformed_json_is_422(api):
    resp = api.post("/jobs", data=b"{nope", headers={"Content-Type": "application/json"})
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["type"] == "json_invalid"


def test_unknown_ids(api):
    unknown = {"detail": "No work: work-000000000000"}
    for path, body in (
        ("/jobs/work-000000000000", unknown),
        ("/jobs/work-000000000000/status", unknown),
        ("/jobs/nope", {"detail": "No work: nope"}),
        ("/work/work-000000000000/result", unknown),
        ("/jobs/cal-000000000000", {"detail": "No recurring job: cal-000000000000"}),
        ("/work/cal-000000000000/result", {"detail": "No recurring job: cal-000000000000"}),
    ):
        resp = api.get(path)
        assert (resp.status_code, resp.json()) == (404, body), path
    for method, path, body in (
        ("PATCH", "/jobs/work-000000000000", {"state": "running"}),
        ("POST", "/jobs/work-000000000000/cancel", {}),
        ("POST", "/jobs/work-000000000000/run", {}),
        ("POST", "/work/work-000000000000/retry", {}),
        ("POST", "/jobs/nope/run", {}),
    ):
        resp = api.request(method, path, json=body)
        detail = "No work: nope" if "nope" in path else unknown["detail"]
        assert (resp.status_code, resp.json()) == (404, {"detail": detail}), path


def test_list_views_and_filters(api, tmp_path):
    a = create(
        api,
        title="a",
        prompt="p" * 500,
        due_at=LATER,
        owner_peer_id="alice",
        circle="c1",
        path=str(tmp_path),
        backend="shell",
    )["job_id"]
    b = create(
        api, title="b", due_at=LATER, owner_peer_id="bob", circle="c1", repowire_session_id="sess-1"
    )["job_id"]
    cal = create(api, title="cal", cron="@daily", owner_peer_id="alice")["calendar_id"]
    full = api.get("/jobs").json()
    ids = [w["job_id"] for w in full["work"]]
    assert ids.index(b) < ids.index(a)  # newest first
    assert cal in [t["calendar_id"] for t in full["recurring"]]
    summary = api.get("/jobs", params={"view": "summary"}).json()
    row = next(w for w in summary["work"] if w["job_id"] == a)
    for dropped in (
        "request",
        "provenance",
        "runner",
        "progress",
        "progress_events",
        "links",
        "protocol_cancel",
    ):
        assert dropped not in row
    assert set(row["execution"]) == {"target", "delivery", "process_scope", "continuity"}
    assert row["state"] == "queued" and row["owner_peer_id"] == "alice" and row["due_at"] == LATER
    assert len(json.dumps(summary)) < len(json.dumps(full))
    assert api.get("/jobs", params={"view": "compact"}).status_code == 400
    alice = api.get("/jobs", params={"owner_peer_id": "alice"}).json()
    assert [w["job_id"] for w in alice["work"]] == [a]
    assert [t["calendar_id"] for t in alice["recurring"]] == [cal]
    both = api.get("/jobs", params={"owner_peer_id": "bob", "circle": "c1"}).json()
    assert [w["job_id"] for w in both["work"]] == [b]
    sess = api.get("/jobs", params={"repowire_session_id": "sess-1"}).json()
    assert [w["job_id"] for w in sess["work"]] == [b] and sess["recurring"] == []
    queued = api.get("/jobs", params={"state": "queued"}).json()
    assert a in [w["job_id"] for w in queued["work"]] and queued["recurring"] == []
    active = api.get("/jobs", params={"state": "active"}).json()
    assert active["work"] == [] and cal in [t["calendar_id"] for t in active["recurring"]]
    assert api.get("/jobs", params={"state": "sleeping"}).status_code == 400


def test_list_pagination(api):
    owner = f"pager-{secrets.token_hex(4)}"
    made = [
        create(api, title=f"p{i}", due_at=LATER, owner_peer_id=owner)["job_id"] for i in range(7)
    ]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, "owner_peer_id": owner}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/jobs", params=params).json()
        pages += 1
        assert "next_cursor" in page and len(page["work"]) <= 3
        seen += [w["job_id"] for w in page["work"]]
        if cursor is not None:
            assert page["recurring"] == []
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1]  # newest first, each exactly once, across pages
    assert pages == 3
    unpaged = api.get("/jobs", params={"owner_peer_id": owner}).json()
    assert "next_cursor" not in unpaged and len(unpaged["work"]) == 7
    # Out-of-range numbers fail validation (422, FastAPI's shape); a cursor this server did
    # not issue is a 400.
    for bad, kind, msg in (
        (0, "greater_than_equal", "Input should be greater than or equal to 1"),
        (1001, "less_than_equal", "Input should be less than or equal to 1000"),
    ):
        resp = api.get("/jobs", params={"limit": bad})
        assert resp.status_code == 422
        assert resp.json() == {"detail": [{"loc": ["query", "limit"], "msg": msg, "type": kind}]}
    bogus = base64.urlsafe_b64encode(b"[1, 2, 3]").decode()
    for cursor in ("garbage!", bogus):
        resp = api.get("/jobs", params={"limit": 2, "cursor": cursor})
        assert resp.status_code == 400
        assert resp.json() == {"detail": "cursor is not one this server issued"}


def test_patch_rules(api):
    job = create(api, title="peer-run", due_at=LATER)["job_id"]
    resp = api.patch(
        f"/jobs/{job}",
        json={
            "state": "running",
            "progress_note": "starting",
            "phase": "work",
            "progress": {"pct": 10},
        },
    )
    assert resp.status_code == 200
    status = resp.json()["status"]
    assert status["state"] == "running" and status["progress"] == {"pct": 10}
    assert status["progress_events"][-1]["note"] == "starting"
    resp = api.patch(f"/jobs/{job}", json={})  # state required
    assert resp.status_code == 422
    assert resp.json()["detail"] == [
        {"loc": ["body", "state"], "msg": "Field required", "type": "missing"}
    ]
    resp = api.patch(f"/jobs/{job}", json={"state": "exploded"})
    assert resp.status_code == 400
    done = api.patch(
        f"/jobs/{job}", json={"state": "completed", "result_summary": "ok", "result_data": {"n": 1}}
    )
    assert done.status_code == 200 and done.json()["status"]["completed_at"]
    again = api.patch(f"/jobs/{job}", json={"state": "completed"})
    assert again.status_code == 200  # the same terminal state is idempotent
    resp = api.patch(f"/jobs/{job}", json={"state": "running"})
    assert resp.status_code == 400 and "terminal" in resp.json()["detail"]
    result = api.get(f"/jobs/{job}/result").json()["result"]
    assert result["state"] == "completed" and result["summary"] == "ok"
    assert result["data"] == {"n": 1} and result["completed_at"]


def test_cancel_of_a_peer_reported_job_ends_it(api):
    job = create(api, title="peer", due_at=LATER)["job_id"]
    api.patch(f"/jobs/{job}", json={"state": "running"})
    status = api.post(f"/jobs/{job}/cancel", json={"reason": "stop"}).json()["status"]
    assert status["state"] == "cancelled" and status["state_reason"] == "stop"


def test_result_not_ready(api):
    job = create(api, title="later", due_at=LATER)["job_id"]
    result = api.get(f"/jobs/{job}/result").json()["result"]
    assert result["result_state"] == "not_ready" and result["status"]["state"] == "queued"


def test_run_retry_and_cancel_rules(api):
    job = create(api, title="c", due_at=LATER)["job_id"]
    resp = api.post(f"/jobs/{job}/retry", json={})
    assert resp.status_code == 409 and resp.json() == {
        "detail": "Job cannot be retried from state queued"
    }
    resp = api.post(f"/jobs/{job}/cancel")  # a JSON body is required
    assert resp.status_code == 422
    assert resp.json() == {
        "detail": [{"loc": ["body"], "msg": "Field required", "type": "missing"}]
    }
    resp = api.post(f"/jobs/{job}/cancel", json={"requested_by_peer_id": "ops", "reason": "nope"})
    status = resp.json()["status"]
    assert status["state"] == "cancelled" and status["cancel_requested"] is True
    assert (
        status["cancellation_reason"] == "nope" and status["cancel_requested_by_peer_id"] == "ops"
    )
    again = api.post(f"/jobs/{job}/cancel", json={"reason": "other"}).json()["status"]
    assert again["state"] == "cancelled" and again["cancellation_reason"] == "nope"
    resp = api.post(f"/jobs/{job}/run", json={})
    assert resp.status_code == 409 and resp.json() == {
        "detail": "Job cannot be run from state cancelled"
    }
    cal = create(api, title="t", cron="@daily")["calendar_id"]
    resp = api.post(f"/jobs/{cal}/run", json={})
    assert resp.status_code == 409
    assert resp.json() == {"detail": "Recurring job templates cannot be run"}
    resp = api.post(f"/jobs/{cal}/retry", json={})
    assert resp.status_code == 409
    assert resp.json() == {"detail": "Recurring job templates cannot be retried"}


def test_template_pause_resume_cancel(api):
    cal = create(api, title="t", cron="*/5 * * * *")["calendar_id"]
    paused = api.post(f"/jobs/{cal}/pause", json={}).json()["status"]
    assert paused["state"] == "paused"
    assert api.get("/jobs", params={"state": "paused"}).json()["recurring"][0]["state"] == "paused"
    clock.advance(3600)
    resumed = api.post(f"/jobs/{cal}/resume").json()["status"]
    assert resumed["state"] == "active"
    # Resuming computes the next due time from now: nothing is owed for the paused hour.
    assert resumed["next_due_at"] > paused["next_due_at"]
    cancelled = api.post(f"/jobs/{cal}/cancel", json={}).json()["status"]
    assert cancelled["state"] == "cancelled"
    resp = api.post(f"/jobs/{cal}/resume", json={})
    assert resp.status_code == 409
    assert resp.json() == {"detail": "Template cannot be resumed from state cancelled"}
    job = create(api, title="not a template", due_at=LATER)["job_id"]
    resp = api.post(f"/jobs/{job}/pause", json={})
    assert resp.status_code == 409
    assert resp.json() == {"detail": "Only recurring templates can be paused"}
    resp = api.post("/jobs/cal-000000000000/pause", json={})
    assert resp.status_code == 404
    assert resp.json() == {"detail": "No recurring job: cal-000000000000"}


def test_trace_records_job_stages(api):
    job = create(api, title="traced", due_at=LATER)["job_id"]
    api.post(f"/jobs/{job}/cancel", json={})
    trace = api.get(f"/traces/{job}").json()
    assert trace["trace_id"] == job and trace["kind"] == "job"
    assert [s["stage"] for s in trace["stages"]] == ["created", "cancelled"]
    assert [s["seq"] for s in trace["stages"]] == [1, 2]
    resp = api.get("/traces/nope")
    assert resp.status_code == 404 and resp.json() == {"detail": "Trace not found: nope"}


def test_state_change_events(api, r):
    job = create(api, title="evented", due_at=LATER)["job_id"]
    api.post(f"/jobs/{job}/cancel", json={})
    events = [f for _, f in r.xrange("events") if f.get("job_id") == job]
    assert [(e["previous_state"], e["state"]) for e in events] == [
        ("", "queued"),
        ("queued", "cancelled"),
    ]
    assert all(e["type"] == "job_state_changed" for e in events)
