"""Beat drives the sweeps on real processes: with short settings, a silent host goes offline and
its claimed session returns to the queue, and a finished job is deleted once its retention has
passed, without anyone calling the tasks by hand."""

from __future__ import annotations

import pytest

from tests.support import records
from tests.support.http import Api
from tests.support.stack import full_stack
from tests.support.waits import wait_for


@pytest.fixture(scope="module")
def fast_stack(tmp_path_factory):
    with full_stack(
        tmp_path_factory.mktemp("fast"),
        DISPATCHYARD_WORKER_OFFLINE_AFTER_S="2",
        DISPATCHYARD_SWEEP_INTERVAL_S="0.5",
        DISPATCHYARD_RETENTION_S="1",
    ) as s:
        yield s


def test_silent_host_goes_offline_and_its_session_is_requeued(fast_stack):
    api = Api(fast_stack.url)
    org = records.new_org(fast_stack.r)
    records.project(api, org)
    w = records.register(api, org)
    sid = records.enqueue(api, org, priority=2)["sessionId"]
    assert api.get(f"/api/workers/{w['workerId']}/poll", w["runtimeToken"]).json()["work"]

    def requeued():
        rows = api.get("/api/sessions", org.key).json()["sessions"]
        return next(s for s in rows if s["id"] == sid)["status"] == "queued"

    wait_for(requeued, timeout=30, message="beat's sweep to requeue the session")
    workers = api.get("/api/workers", org.key).json()["workers"]
    assert next(x for x in workers if x["id"] == w["workerId"])["status"] == "offline"
    assert "sweeps.offline_hosts" in fast_stack.log("worker")


def test_a_finished_job_is_deleted_after_its_retention(fast_stack):
    api = Api(fast_stack.url)
    body = {"title": "t", "prompt": "p", "path": "/tmp", "backend": "shell"}
    job_id = api.post("/jobs", json={**body, "due_at": "2099-01-01T00:00:00Z"}).json()["job_id"]
    assert api.post(f"/jobs/{job_id}/cancel", json={}).json()["status"]["state"] == "cancelled"
    wait_for(
        lambda: api.get(f"/jobs/{job_id}").status_code == 404,
        timeout=30,
        message="beat's retention sweep to delete the job",
    )
    assert not fast_stack.r.exists(f"job:{job_id}")
    assert "retention.sweep" in fast_stack.log("worker")
