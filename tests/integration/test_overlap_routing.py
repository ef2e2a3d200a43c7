"""Overlap policies of an every-minute template whose fires outlast a minute, and routing of
fires to the worker of the machine that holds the job's path (the in-process worker is
test-host's; host-b's is a Celery worker process)."""

from __future__ import annotations

import pytest

from dispatchyard.state import clock, liveness
from tests.support import records
from tests.support.stack import Stack
from tests.support.waits import wait_for

TERMINAL = records.JOB_TERMINAL
status = records.job
wait_state = records.wait_job
next_due = records.next_due


@pytest.fixture(autouse=True)
def _worker(celery_worker):
    return celery_worker


def template(api, tmp_path, overlap):
    release = tmp_path / "release"
    resp = api.post(
        "/jobs",
        json={
            "title": f"overlap-{overlap}",
            "prompt": f"wait:{release}",
            "path": str(tmp_path),
            "backend": "claude-code",
            "cron": "* * * * *",
            "overlap": overlap,
        },
    )
    assert resp.status_code == 200
    return resp.json()["calendar_id"], release


def children(api, cal_id):
    rows = api.get("/jobs").json()["work"]
    return [w for w in rows if w.get("source_id") == cal_id][::-1]  # oldest first


def test_skip_starts_no_second_agent(api, tmp_path):
    cal_id, release = template(api, tmp_path, "skip")
    first = next_due(api, cal_id)["last_occurrence_work_id"]
    wait_state(api, first, ("running",))
    after = next_due(api, cal_id)
    assert after["last_occurrence_work_id"] == first
    assert after["skipped_count"] == 1 and after["last_skipped_due_at"]
    after = next_due(api, cal_id)
    assert after["skipped_count"] == 2
    assert len(after["provenance"]["skipped_due_times"]) == 2
    assert len(children(api, cal_id)) == 1
    release.touch()
    assert wait_state(api, first, TERMINAL)["state"] == "completed"
    second = next_due(api, cal_id)["last_occurrence_work_id"]
    assert second != first  # with the previous one ended, the next due time fires again


def test_buffer_one_waits_for_the_previous_then_starts(api, tmp_path):
    cal_id, release = template(api, tmp_path, "buffer_one")
    first = next_due(api, cal_id)["last_occurrence_work_id"]
    wait_state(api, first, ("running",))
    buffered = next_due(api, cal_id)
    second = buffered["last_occurrence_work_id"]
    assert second != first and buffered["buffered_work_id"] == second
    waiting = status(api, second)
    assert waiting["state"] == "queued" and waiting["state_reason"] == "buffered_behind_previous"
    third = next_due(api, cal_id)  # one already waits: this due time is skipped
    assert third["last_occurrence_work_id"] == second and third["skipped_count"] == 1
    assert status(api, second)["state"] == "queued"
    release.touch()
    assert wait_state(api, first, TERMINAL)["state"] == "completed"
    assert wait_state(api, second, TERMINAL)["state"] == "completed"
    assert len(children(api, cal_id)) == 2
    assert api.get(f"/jobs/{cal_id}").json()["status"]["buffered_work_id"] is None


def test_allow_starts_anyway(api, tmp_path):
    cal_id, release = template(api, tmp_path, "allow")
    ids = []
    for _ in range(3):
        ids.append(next_due(api, cal_id)["last_occurrence_work_id"])
        wait_state(api, ids[-1], ("running",))
    assert len(set(ids)) == 3
    assert all(status(api, i)["state"] == "running" for i in ids)
    release.touch()
    for i in ids:
        assert wait_state(api, i, TERMINAL)["state"] == "completed"


@pytest.fixture(scope="module")
def host_b(tmp_path_factory, r, redis_url):
    """A second machine: a Celery worker process on the suite's Redis (where the in-process
    shim sends its fires), with host-b as its machine."""
    with Stack(tmp_path_factory.mktemp("host-b"), redis_url=redis_url) as s:
        s.worker("worker-b", machine="host-b")
        wait_for(
            lambda: liveness.machine_alive(r, "host-b", clock.now_ms()),
            timeout=30,
            message="host-b's worker",
        )
        yield s


def test_a_fire_for_one_machine_runs_only_there(api, tmp_path, host_b):
    def run_on(machine):
        resp = api.post(
            "/jobs",
            json={
                "title": f"on {machine}",
                "prompt": "where am I",
                "path": str(tmp_path),
                "backend": "claude-code",
                "machine": machine,
            },
        )
        return wait_state(api, resp.json()["job_id"], TERMINAL)

    for _ in range(3):
        on_b = run_on("host-b")
        assert on_b["state"] == "completed"
        attempt = on_b["runner"]["attempts"][0]
        assert attempt["machine"] == "host-b" and attempt["executor"]["host"] == "host-b"
        on_test = run_on("test-host")
        assert on_test["runner"]["attempts"][0]["executor"]["host"] == "test-host"
    assert "jobs.fire" in host_b.log("worker-b")
