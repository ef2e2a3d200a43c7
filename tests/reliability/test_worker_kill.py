"""A worker killed with SIGKILL mid-fire, 20 times: every job reaches a terminal state, no job
runs two attempts at once, and no executor process is left behind."""

from __future__ import annotations

import os
import signal

import pytest

from dispatchyard.state import clock, jobs, liveness
from tests.support.stack import Stack
from tests.support.waits import wait_for
from workers import executors

KILLS = 20
MACHINE = "kill-host"


@pytest.fixture
def stack(tmp_path_factory):
    """gunicorn and beat on a Redis of their own; the test starts (and kills) the workers."""
    with Stack(
        tmp_path_factory.mktemp("kills"),
        DISPATCHYARD_SWEEP_INTERVAL_S="0.5",
        DISPATCHYARD_JOB_LEASE_S="2",
    ) as s:
        s.gunicorn()
        s.beat()
        yield s


def test_sigkill_mid_fire(stack, tmp_path):
    api, r = stack.api, stack.r
    job_ids = []
    for i in range(KILLS):
        name = f"kill-worker-{i}"
        proc = stack.worker(name, machine=MACHINE, DISPATCHYARD_JOB_LEASE_S="2")
        marker = tmp_path / f"started-{i}"
        resp = api.post(
            "/jobs",
            json={
                "title": f"victim {i}",
                "prompt": f"child sleep:300 started:{marker}",
                "path": str(tmp_path),
                "backend": "claude-code",
                "machine": MACHINE,
            },
        )
        job_ids.append(resp.json()["job_id"])
        # The job waits for a live worker on its machine, then runs there.
        wait_for(marker.exists, timeout=60, message=f"executor {i} to start")
        assert proc.poll() is None
        stack.stop(name, sig=signal.SIGKILL)

    # A worker comes back on that host: it reaps what the dead ones left; the lease sweep ends
    # their attempts.
    stack.worker("kill-worker-final", machine=MACHINE, DISPATCHYARD_JOB_LEASE_S="2")
    wait_for(lambda: liveness.machine_alive(r, MACHINE, clock.now_ms()), timeout=30)

    def all_terminal():
        docs = [api.get(f"/jobs/{j}").json()["status"] for j in job_ids]
        return all(d["state"] in ("unavailable", "cancelled", "failed") for d in docs) and docs

    docs = wait_for(all_terminal, timeout=90, message="every job to end")
    for doc in docs:
        assert doc["state"] == "unavailable" and doc["state_reason"] == "runner_interrupted"
        attempts = doc["runner"]["attempts"]
        assert len(attempts) == 1, "a second attempt started"
        assert attempts[0]["ended_at"] is not None
    attempt_ids = [d["runner"]["attempts"][0]["attempt_id"] for d in docs]
    wait_for(
        lambda: not any(executors.pids_of(a) for a in attempt_ids),
        timeout=60,
        message="every leftover executor and child to be reaped",
    )


def test_sigkill_while_dispatching(stack, tmp_path):
    """Workers killed between the acquire (`dispatching`) and the executor's start: the worker
    is frozen (SIGSTOP) the moment its job reads `dispatching`, then SIGKILLed. Every job still
    ends (`runner_interrupted` from the lease sweep), runs one attempt, and leaves no process."""
    api, r = stack.api, stack.r
    job_ids, hits = [], 0
    for i in range(10):
        name = f"dispatch-worker-{i}"
        proc = stack.worker(name, machine=MACHINE, DISPATCHYARD_JOB_LEASE_S="2")
        wait_for(lambda: liveness.machine_alive(r, MACHINE, clock.now_ms()), timeout=30)
        if job_ids:
            # The previous frozen worker's job first ends (lease sweep) and its leftovers are
            # reaped by this worker; otherwise this worker, frozen next, could take that reap
            # task with it (an unacknowledged task returns only after the visibility timeout).
            previous = job_ids[-1]
            wait_for(lambda j=previous: jobs.flags(r, j).get("state") == "unavailable", timeout=30)
            attempt = jobs.flags(r, previous)["attempt"]
            wait_for(lambda a=attempt: not executors.pids_of(a), timeout=30)
        marker = tmp_path / f"dispatch-started-{i}"
        body = {
            "title": f"frozen {i}",
            "prompt": f"child sleep:300 started:{marker}",
            "path": str(tmp_path),
            "backend": "claude-code",
            "machine": MACHINE,
        }
        job_id = api.post("/jobs", json=body).json()["job_id"]
        job_ids.append(job_id)
        wait_for(
            lambda j=job_id: jobs.flags(r, j).get("state") != "queued", timeout=30, interval=0.0005
        )
        os.killpg(proc.pid, signal.SIGSTOP)
        if jobs.flags(r, job_id).get("state") == "dispatching":
            hits += 1
        stack.stop(name, sig=signal.SIGKILL)
    assert hits > 0, "no worker was frozen while its job was dispatching"

    stack.worker("dispatch-worker-final", machine=MACHINE, DISPATCHYARD_JOB_LEASE_S="2")

    def all_ended():
        docs = [api.get(f"/jobs/{j}").json()["status"] for j in job_ids]
        return all(d["state"] not in ("queued", "dispatching", "running") for d in docs) and docs

    docs = wait_for(all_ended, timeout=90, message="every job to end")
    for doc in docs:
        assert (doc["state"], doc["state_reason"]) == ("unavailable", "runner_interrupted")
        assert len(doc["runner"]["attempts"]) == 1, "a second attempt started"
    attempt_ids = [d["runner"]["attempts"][0]["attempt_id"] for d in docs]
    wait_for(
        lambda: not any(executors.pids_of(a) for a in attempt_ids),
        timeout=60,
        message="every executor a frozen worker may have started to be reaped",
    )
