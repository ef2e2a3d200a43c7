"""Beat's mutation and job-time sweeps on real processes (gunicorn, a Celery worker, beat on a
Redis of their own), with short settings. Nobody calls a sweep here: the test acts only over
HTTP (and a mesh WebSocket) and reads the outcome over HTTP; the worker's log shows the sweep
that made it.

- A mutation delivered to a host that then never heartbeats again ends `failed` /
  `undelivered`, whether it was delivered `MUTATION_MAX_DELIVERIES` times or once: every
  redelivery window that passes without a heartbeat is a delivery the host missed (README
  "Celery beat runs its sweeps", decisions.md "Redelivery").
- A job still queued when its `expires_at` passes ends `expired` / `expires_at_passed`; a
  persistent job handed to a peer (`delivered`, or `running` as the peer reported) whose
  `deadline_at` passes ends `failed` / `deadline_exceeded` (decisions.md "Deadlines and
  expiry": "A beat sweep applies both to jobs no supervisor watches").
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from dispatchyard.state.clock import parse_ms
from tests.support import records
from tests.support.mesh_client import MeshPeer
from tests.support.stack import full_stack
from tests.support.waits import wait_for

SWEEP_S = 0.5
REDELIVER_S = 1.5
MAX_DELIVERIES = 2
# A sweep runs every SWEEP_S; a busy two-core machine may run one this much later.
SWEEP_SLACK_S = 3.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with full_stack(
        tmp_path_factory.mktemp("sweeps"),
        DISPATCHYARD_SWEEP_INTERVAL_S=str(SWEEP_S),
        DISPATCHYARD_MUTATION_REDELIVER_AFTER_S=str(REDELIVER_S),
        DISPATCHYARD_MUTATION_MAX_DELIVERIES=str(MAX_DELIVERIES),
    ) as s:
        yield s


def sweep_results(log: str, task: str) -> list[str]:
    """What each run of `task` returned, from the worker's log."""
    return re.findall(rf"Task {re.escape(task)}\[[^\]]+\] succeeded in [^:]+: (.*)", log)


# ---- mutations -------------------------------------------------------------------------------


def test_mutation_delivered_once_to_a_host_that_never_comes_back_ends_undelivered(stack):
    api = stack.api
    org = records.new_org(stack.r)
    host = records.register(api, org)
    resp = api.post(
        "/api/daemon/mutations",
        org.key,
        json={
            "workerHostId": host["workerId"],
            "op": "project.add",
            "params": {"id": "prj_once", "repository": "github.com/a/once"},
        },
    )
    assert resp.status_code == 201, resp.text
    mid = resp.json()["mutation"]["id"]
    beat = api.post(
        f"/api/workers/{host['workerId']}/heartbeat", host["runtimeToken"], json={"activeCount": 0}
    )
    assert [m["id"] for m in beat.json()["pendingMutations"]] == [mid]
    # One delivery, then silence: the windows of the redelivery it missed and of its last
    # delivery pass, and the sweep fails it.
    done = wait_for(
        lambda: (
            (m := api.get(f"/api/daemon/mutations/{mid}", org.key).json()["mutation"])["status"]
            != "delivered"
            and m
        ),
        timeout=REDELIVER_S * MAX_DELIVERIES + SWEEP_SLACK_S + 10,
        interval=0.1,
        message="the sweep to fail the mutation",
    )
    assert (done["status"], done["error"], done["deliveryCount"]) == ("failed", "undelivered", 1)
    after_s = (parse_ms(done["failedAt"]) - parse_ms(done["lastDeliveredAt"])) / 1000
    print(f"\nmutation delivered once failed undelivered {after_s:.2f} s after its delivery")
    windows = MAX_DELIVERIES  # the missed redelivery and the last delivery's window
    assert REDELIVER_S * windows <= after_s <= REDELIVER_S * windows + SWEEP_SLACK_S, done


def test_mutation_of_a_host_that_never_comes_back_ends_undelivered(stack):
    api = stack.api
    org = records.new_org(stack.r)
    host = records.register(api, org)

    def heartbeat() -> list[str]:
        resp = api.post(
            f"/api/workers/{host['workerId']}/heartbeat",
            host["runtimeToken"],
            json={"activeCount": 0},
        )
        assert resp.status_code == 200, resp.text
        return [m["id"] for m in resp.json()["pendingMutations"]]

    def mutation() -> dict:
        resp = api.get(f"/api/daemon/mutations/{mid}", org.key)
        assert resp.status_code == 200, resp.text
        return resp.json()["mutation"]

    resp = api.post(
        "/api/daemon/mutations",
        org.key,
        json={
            "workerHostId": host["workerId"],
            "op": "project.add",
            "params": {"id": "prj_sweep", "repository": "github.com/a/sweep"},
        },
    )
    assert resp.status_code == 201, resp.text
    mid = resp.json()["mutation"]["id"]

    # The host heartbeats: delivered. It keeps heartbeating, reporting nothing, until the
    # mutation is delivered again after the redelivery window: its last delivery.
    assert heartbeat() == [mid]
    wait_for(lambda: heartbeat() == [mid], timeout=REDELIVER_S + 10, interval=0.2)
    delivered = mutation()
    assert (delivered["status"], delivered["deliveryCount"]) == ("delivered", MAX_DELIVERIES)
    # Then it never heartbeats again. Beat's sweep fails the mutation once the window after
    # its last delivery has passed with no report.
    done = wait_for(
        lambda: (m := mutation())["status"] != "delivered" and m,
        timeout=REDELIVER_S + SWEEP_SLACK_S + 10,
        interval=0.1,
        message="the sweep to fail the mutation",
    )
    assert (done["status"], done["error"]) == ("failed", "undelivered"), done
    assert done["deliveryCount"] == MAX_DELIVERIES
    events = [e["event"] for e in done["history"]]
    assert events == ["requested", "delivered", "redelivered", "failed"], done["history"]
    after_s = (parse_ms(done["failedAt"]) - parse_ms(done["lastDeliveredAt"])) / 1000
    print(f"\nmutation failed undelivered {after_s:.2f} s after its last delivery")
    assert REDELIVER_S <= after_s <= REDELIVER_S + SWEEP_SLACK_S, done
    # Its host never came back: the sweep did it, not a heartbeat.
    assert any(int(n) >= 1 for n in sweep_results(stack.log("worker"), "sweeps.stale_mutations")), (
        stack.log("worker")[-3000:]
    )


# ---- job times --------------------------------------------------------------------------------


def _in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def test_a_job_still_queued_past_its_expires_at_expires(stack, tmp_path):
    api = stack.api
    # A machine no worker serves: the job stays queued (no fire goes out), so only the sweep
    # can end it.
    expires_at = _in(3)
    resp = api.post(
        "/jobs",
        json={
            "title": "expiring",
            "prompt": "p",
            "path": str(tmp_path),
            "backend": "claude-code",
            "machine": f"nowhere-{secrets.token_hex(3)}",
            "expires_at": expires_at,
        },
    )
    assert resp.status_code == 200, resp.text
    job_id = resp.json()["job_id"]
    queued = records.wait_job(api, job_id, ("queued",))
    assert queued["state_reason"] == "no_worker_for_machine", queued
    done = records.wait_job(api, job_id, timeout=3 + SWEEP_SLACK_S + 10)
    assert (done["state"], done["state_reason"]) == ("expired", "expires_at_passed"), done
    assert done["runner"]["attempts"] == [], "it never ran"
    late_s = (parse_ms(done["completed_at"]) - parse_ms(expires_at)) / 1000
    print(f"\nqueued job expired {late_s:.2f} s after its expires_at")
    assert 0 <= late_s <= SWEEP_SLACK_S, done
    results = sweep_results(stack.log("worker"), "sweeps.job_times")
    assert any("'expired': 1" in x for x in results), stack.log("worker")[-3000:]


def test_a_delivered_or_running_persistent_job_past_its_deadline_fails(stack):
    api = stack.api
    name = f"deadliner-{secrets.token_hex(3)}"
    peer = MeshPeer(stack.url, name)
    try:
        deadline_at = _in(6)
        jobs = {}
        for label in ("delivered", "running"):
            resp = api.post(
                "/jobs",
                json={
                    "title": f"deadline {label}",
                    "prompt": "p",
                    "assigned_peer_id": name,
                    "deadline_at": deadline_at,
                },
            )
            assert resp.status_code == 200, resp.text
            jobs[label] = resp.json()["job_id"]
        for job_id in jobs.values():
            handed = records.wait_job(api, job_id, ("delivered", *records.JOB_TERMINAL))
            # Handed to the peer before its deadline (a fire past the deadline would fail it
            # itself, and prove nothing of the sweep).
            assert handed["state"] == "delivered", handed
            assert handed["assigned_peer_id"] == peer.peer_id
        # The peer reports one of them running; nobody supervises either.
        attempt = records.job(api, jobs["running"])["runner"]["current_attempt_id"]
        resp = api.patch(f"/jobs/{jobs['running']}", json={"state": "running"})
        assert resp.status_code == 200, resp.text
        assert records.job(api, jobs["running"])["state"] == "running"
        assert parse_ms(deadline_at) > parse_ms(datetime.now(UTC).isoformat()), "too slow"

        for label, job_id in jobs.items():
            done = records.wait_job(api, job_id, timeout=6 + SWEEP_SLACK_S + 10)
            assert (done["state"], done["state_reason"]) == ("failed", "deadline_exceeded"), (
                label,
                done,
            )
            assert done["error"] == {"reason": "deadline_exceeded"}
            ended = done["runner"]["attempts"][-1]
            assert ended["ended_at"] and ended["error"] == {"reason": "deadline_exceeded"}
            late_s = (parse_ms(done["completed_at"]) - parse_ms(deadline_at)) / 1000
            print(f"\n{label} persistent job failed {late_s:.2f} s after its deadline_at")
            assert 0 <= late_s <= SWEEP_SLACK_S, done
        assert ended["attempt_id"] == attempt
    finally:
        peer.close()
    results = sweep_results(stack.log("worker"), "sweeps.job_times")
    swept = sum(int(m) for x in results for m in re.findall(r"'deadline_exceeded': (\d+)", x))
    assert swept == 2, results
