"""Fires through the in-process shim and a real Celery worker (in this process, so the clock
can move), which starts the fake agent CLI as the per_fire executor of each job."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest

from dispatchyard.state import clock, jobs, keys
from dispatchyard.state.errors import Conflict
from tasks import jobs as fire_tasks
from tasks import tick
from tests.support import records
from tests.support.waits import wait_for
from workers import executors


@pytest.fixture(autouse=True)
def _worker(celery_worker):
    return celery_worker


status = records.job
wait_state = records.wait_job


def agent_job(api, tmp_path, prompt, **body):
    resp = api.post(
        "/jobs",
        json={
            "title": "agent",
            "prompt": prompt,
            "path": str(tmp_path),
            "backend": "claude-code",
            **body,
        },
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["job_id"]


def started_pid(path):
    return wait_for(
        lambda: path.exists() and path.read_text().strip(), message="the executor to start"
    )


def test_one_shot_completes(api, tmp_path):
    job_id = agent_job(api, tmp_path, "write the report")
    done = wait_state(api, job_id)
    assert done["state"] == "completed", done
    assert done["result_summary"] == "done: write the report"
    attempt = done["runner"]["attempts"][0]
    assert done["runner"]["attempt_count"] == 1
    assert attempt["attempt_id"].startswith("attempt-") and len(attempt["attempt_id"]) == 20
    assert attempt["exit_code"] == 0 and attempt["executor"]["pid"] > 0
    assert attempt["executor"]["host"] == "test-host"
    assert attempt["started_at"] and attempt["ended_at"]
    assert done["provenance"]["runtime_binding"]["runtime_session_id"].startswith("fake-")
    assert executors.pids_of(attempt["attempt_id"]) == []
    stages = [s["stage"] for s in api.get(f"/traces/{job_id}").json()["stages"]]
    assert stages == ["created", "dispatched", "executor_started", "completed"]


def test_failing_job_fails_with_its_error(api, tmp_path):
    job_id = agent_job(api, tmp_path, "break fail:3")
    done = wait_state(api, job_id)
    assert done["state"] == "failed" and done["state_reason"] == "exit_code"
    assert done["error"]["exit_code"] == 3
    assert "failing as asked" in done["error"]["message"]
    result = api.get(f"/jobs/{job_id}/result").json()["result"]
    assert result["state"] == "failed" and result["error"]["exit_code"] == 3


def test_shell_backend_result_is_stdout_tail(api, tmp_path):
    resp = api.post(
        "/jobs",
        json={
            "title": "sh",
            "prompt": "echo hello; echo world",
            "path": str(tmp_path),
            "backend": "shell",
        },
    )
    done = wait_state(api, resp.json()["job_id"])
    assert done["state"] == "completed" and done["result_summary"] == "hello\nworld"


def test_cancel_kills_a_running_executor_and_its_children(api, tmp_path):
    marker = tmp_path / "started"
    job_id = agent_job(api, tmp_path, f"child sleep:60 started:{marker}")
    started_pid(marker)
    running = wait_state(api, job_id, ("running",))
    attempt_id = running["runner"]["current_attempt_id"]
    assert len(executors.pids_of(attempt_id)) == 2  # the agent and its grandchild
    resp = api.post(f"/jobs/{job_id}/cancel", json={"reason": "operator"})
    assert resp.json()["status"]["cancel_requested"] is True
    done = wait_state(api, job_id)
    assert done["state"] == "cancelled" and done["state_reason"] == "operator"
    assert wait_for(lambda: executors.pids_of(attempt_id) == [], timeout=5)


def test_cancel_escalates_to_sigkill(api, tmp_path):
    marker = tmp_path / "started"
    job_id = agent_job(api, tmp_path, f"ignore-term sleep:60 started:{marker}")
    started_pid(marker)
    attempt_id = wait_state(api, job_id, ("running",))["runner"]["current_attempt_id"]
    api.post(f"/jobs/{job_id}/cancel", json={})
    done = wait_state(api, job_id)
    assert done["state"] == "cancelled"
    assert done["runner"]["attempts"][0]["exit_code"] == -9  # SIGTERM ignored, then SIGKILL
    assert executors.pids_of(attempt_id) == []


def test_deadline_stops_an_executor(api, tmp_path):
    deadline = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    marker = tmp_path / "started"
    job_id = agent_job(api, tmp_path, f"sleep:60 started:{marker}", deadline_at=deadline)
    started_pid(marker)
    done = wait_state(api, job_id)
    assert done["state"] == "failed" and done["state_reason"] == "deadline_exceeded"
    assert done["error"] == {"reason": "deadline_exceeded"}
    assert executors.pids_of(done["runner"]["attempts"][0]["attempt_id"]) == []


def test_executor_patch_with_attempt_id_wins(api, tmp_path):
    release = tmp_path / "release"
    job_id = agent_job(api, tmp_path, f"wait:{release}")
    running = wait_state(api, job_id, ("running",))
    attempt_id = running["runner"]["current_attempt_id"]
    assert api.patch(f"/jobs/{job_id}", json={"state": "completed"}).status_code == 400
    stale = api.patch(f"/jobs/{job_id}", json={"state": "completed", "attempt_id": "attempt-x"})
    assert stale.status_code == 409 and stale.json() == {"detail": "stale attempt_id"}
    resp = api.patch(
        f"/jobs/{job_id}",
        json={
            "state": "completed",
            "attempt_id": attempt_id,
            "result_summary": "reported by the agent",
        },
    )
    assert resp.status_code == 200
    # The executor is stopped (nothing outlives its fire) and the agent's report stands.
    assert wait_for(lambda: executors.pids_of(attempt_id) == [], timeout=10)
    final = status(api, job_id)
    assert final["state"] == "completed" and final["result_summary"] == "reported by the agent"


def test_missing_target_and_persistent_without_peer(api):
    bare = api.post("/jobs", json={"title": "nothing to run"}).json()["job_id"]
    done = wait_state(api, bare)
    assert done["state"] == "unavailable" and done["state_reason"] == "missing_target"
    peer = api.post("/jobs", json={"title": "p", "assigned_peer_id": "repow-global-deadbeef"})
    done = wait_state(api, peer.json()["job_id"])
    assert done["state"] == "unavailable" and done["state_reason"] == "assigned_peer_offline"


def test_missing_path_is_unavailable(api, tmp_path):
    job_id = agent_job(api, tmp_path / "gone", "x")
    done = wait_state(api, job_id)
    assert done["state"] == "unavailable" and done["state_reason"] == "path_not_found"


def test_due_later_then_fired_by_the_tick(api, r, tmp_path):
    due = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    job_id = agent_job(api, tmp_path, "later", due_at=due)
    assert status(api, job_id)["state"] == "queued"
    clock.advance(601)
    tick.fire_due(r, clock.now_ms())
    assert wait_state(api, job_id)["state"] == "completed"


def test_expired_before_start(api, r, tmp_path):
    now = datetime.now(UTC)
    job_id = agent_job(
        api,
        tmp_path,
        "x",
        due_at=(now + timedelta(minutes=5)).isoformat(),
        expires_at=(now + timedelta(minutes=1)).isoformat(),
    )
    clock.advance(6 * 60)
    tick.fire_due(r, clock.now_ms())
    done = wait_state(api, job_id)
    assert done["state"] == "expired" and done["runner"]["attempt_count"] == 0


def test_run_and_retry_fire_again(api, tmp_path):
    job_id = agent_job(api, tmp_path, "flaky fail:2")
    assert wait_state(api, job_id)["state"] == "failed"
    assert api.post(f"/jobs/{job_id}/retry", json={}).status_code == 200
    wait_for(lambda: status(api, job_id)["runner"]["attempt_count"] == 2)
    done = wait_state(api, job_id)
    assert done["state"] == "failed" and done["runner"]["attempt_count"] == 2
    assert api.post(f"/jobs/{job_id}/run", json={}).status_code == 200
    wait_for(lambda: status(api, job_id)["runner"]["attempt_count"] == 3)


def test_redelivered_fire_message_starts_no_second_attempt(api, r, tmp_path):
    due = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    job_id = agent_job(api, tmp_path, "once", due_at=due)
    # The same fire, delivered three times (a redelivery after a lost ack, a resend).
    for _ in range(3):
        fire_tasks.fire.apply_async((job_id, "run:same-key", "run"))
    done = wait_state(api, job_id)
    assert done["state"] == "completed"
    assert done["runner"]["attempt_count"] == 1
    assert done["runner"]["fire_keys"] == ["run:same-key"]
    # And directly: the key is spent.
    with pytest.raises(Conflict) as refused:
        jobs.acquire(
            r,
            job_id,
            fire_key="run:same-key",
            why="run",
            now_ms=clock.now_ms(),
            lease_ms=3000,
            machine="test-host",
        )
    assert refused.value.message == "duplicate_fire"


def test_no_worker_for_machine_waits(api, tmp_path):
    job_id = agent_job(api, tmp_path, "x", machine="no-such-host")
    queued = status(api, job_id)
    assert queued["state"] == "queued" and queued["state_reason"] == "no_worker_for_machine"
    assert queued["execution"]["target"]["machine"] == "no-such-host"


def every_minute(api, tmp_path, **body):
    """An every-minute template running the fake agent in `tmp_path`; the create answer."""
    resp = api.post(
        "/jobs",
        json={
            "title": "t",
            "prompt": "p",
            "path": str(tmp_path),
            "backend": "claude-code",
            "cron": "* * * * *",
            **body,
        },
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_resume_passes_the_previous_session_id(api, r, tmp_path):
    cal = every_minute(api, tmp_path, title="daily", prompt="continue the work")
    assert cal["calendar"]["execution"]["continuity"] == "resume"
    cal_id = cal["calendar_id"]
    children = []
    for _ in range(3):
        child = records.next_due(api, cal_id)["last_occurrence_work_id"]
        assert child not in children
        children.append(child)
        assert wait_state(api, child)["state"] == "completed"
    first, second, third = (status(api, c) for c in children)
    sid = first["provenance"]["runtime_binding"]["runtime_session_id"]
    assert first["provenance"]["continuity"] == {
        "mode": "resume",
        "resumed": False,
        "reason": "no_runtime_binding",
    }
    assert second["provenance"]["continuity"] == {
        "mode": "resume",
        "resumed": True,
        "runtime_session_id": sid,
    }
    assert second["result_summary"].endswith(f"(resumed {sid})")
    assert third["provenance"]["continuity"]["runtime_session_id"] == sid
    assert second["source_kind"] == "calendar" and second["source_id"] == cal_id
    schedule = second["execution"]["schedule"]
    assert schedule["calendar_id"] == cal_id and schedule["cron"] == "* * * * *"


def test_resume_starts_fresh_when_the_binding_no_longer_matches(api, r, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    cal_id = every_minute(api, tmp_path)["calendar_id"]
    from dispatchyard.state import templates

    templates.record_binding(
        r,
        cal_id,
        {
            "backend": "claude-code",
            "path": str(other),
            "circle": "default",
            "runtime_session_id": "old",
        },
        clock.now_ms(),
    )
    child = records.next_due(api, cal_id)["last_occurrence_work_id"]
    done = wait_state(api, child)
    assert done["provenance"]["continuity"] == {
        "mode": "resume",
        "resumed": False,
        "reason": "path_changed",
    }
    assert "resumed" not in done["result_summary"]


def test_fresh_never_resumes(api, r, tmp_path):
    cal_id = every_minute(api, tmp_path, continuity="fresh")["calendar_id"]
    for _ in range(2):
        child = records.next_due(api, cal_id)["last_occurrence_work_id"]
        done = wait_state(api, child)
        assert done["provenance"]["continuity"]["resumed"] is False
        assert done["provenance"]["continuity"]["reason"] == "continuity_fresh"


def test_events_follow_a_fire(api, r, tmp_path):
    job_id = agent_job(api, tmp_path, "evented")
    wait_state(api, job_id)
    states = [f["state"] for _, f in r.xrange("events") if f.get("job_id") == job_id]
    assert states == ["queued", "dispatching", "running", "completed"]


def test_agent_type_without_a_command_is_refused_with_what_runs_here(api, r, tmp_path):
    """repowire's agent types pass the enum, but a per_fire job needs a command here: 422 with
    the runnable list (the suite configures claude-code over the shipped five), never a job that
    ends `invalid_backend`."""
    title = f"not runnable {secrets.token_hex(4)}"
    runnable = ["claude-code", "codex", "gemini", "opencode", "shell"]
    for body in (
        {"path": str(tmp_path), "backend": "pi"},
        {"path": str(tmp_path), "backend": "antigravity", "cron": "0 9 * * *"},
        {"request": {"execution": {"target": {"path": str(tmp_path), "backend": "mcp-http"}}}},
    ):
        resp = api.post("/jobs", json={"title": title, "prompt": "x", **body})
        assert resp.status_code == 422, resp.text
        (problem,) = resp.json()["detail"]
        assert problem["loc"] == ["body", "backend"] and problem["type"] == "backend_not_runnable"
        assert sorted(problem["ctx"]["runnable"]) == runnable
        assert "a per_fire job runs one of 'claude-code'" in problem["msg"]
    stored = [*r.hvals(keys.JOB_DOCS), *r.hvals(keys.TEMPLATE_DOCS)]
    assert not [doc for doc in stored if title in doc]  # nothing was created
    # An unknown name is still the enum's 422; a persistent job's backend is its peer's business.
    unknown = api.post("/jobs", json={"title": "x", "path": str(tmp_path), "backend": "nope"})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["type"] == "enum"
    persistent = {
        "title": "p",
        "backend": "pi",
        "path": str(tmp_path),
        "process_scope": "persistent",
    }
    assert api.post("/jobs", json=persistent).status_code == 200
