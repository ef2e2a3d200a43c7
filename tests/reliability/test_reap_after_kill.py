"""A worker SIGKILLed while it holds an attempt's reap task: another worker of the same machine,
running all along, reaps the attempt's leftover processes within a lease of the kill (not after
the broker's visibility timeout of an hour, when the unacknowledged reap would come back).

The arrangement, made deterministic by queues and signals rather than by timing:
- worker `keeper` consumes the shared queue only (it runs beat's sweeps); worker `holder`
  consumes the machine's queue only, with one pool process, and runs the fire;
- the holder's pool process is frozen (SIGSTOP): its supervisor stops renewing the lease, the
  lease sweep ends the attempt and sends the reap to the machine's queue, and the holder's main
  process takes it (it is in the broker's `unacked` hash) but cannot run it;
- the holder is SIGKILLed with the reap in hand; the keeper starts consuming the machine's
  queue (a control command: it was running before the fire and is not restarted).
With `never_written` the executor record is deleted before the lease runs out, as if the worker
had died between the spawn and the record.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest
from celery import Celery

from dispatchyard.state import executors as executor_records
from dispatchyard.state import jobs, keys
from tasks import names
from tests.support.stack import BIN, Stack
from tests.support.waits import wait_for
from workers import executors

LEASE_S = 3.0
SWEEP_S = 0.5
# The reap is sent again a lease after the lease sweep first saw the record of an attempt that
# no longer runs, which is no later than the kill; then a sweep interval and delivery.
BOUND_S = LEASE_S + 2 * SWEEP_S + 1.0


@pytest.fixture
def stack(tmp_path_factory):
    with Stack(
        tmp_path_factory.mktemp("reap"),
        DISPATCHYARD_SWEEP_INTERVAL_S=str(SWEEP_S),
        DISPATCHYARD_JOB_LEASE_S=str(LEASE_S),
    ) as s:
        s.gunicorn()
        s.beat()
        yield s


def start_worker(stack: Stack, name: str, machine: str, queue: str, concurrency: int = 2):
    argv = [str(BIN / "celery"), "-A", "workers", "worker", "--loglevel", "INFO"]
    argv += ["--concurrency", str(concurrency), "--hostname", f"{name}@%h", "-Q", queue]
    return stack.start(name, argv, DISPATCHYARD_MACHINE=machine)


def node(name: str) -> str:
    return f"{name}@{socket.gethostname()}"


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def reap_held(stack: Stack, attempt_id: str) -> bool:
    """The attempt's reap is taken by a worker and not yet acknowledged."""
    for raw in stack.r.hvals("unacked"):
        headers = json.loads(raw)[0]["headers"]
        if headers["task"] == names.REAP and attempt_id in headers["argsrepr"]:
            return True
    return False


@pytest.fixture
def leftovers():
    """Attempts whose processes the test kills itself if it fails (they would sleep on)."""
    attempt_ids: list[str] = []
    yield attempt_ids
    for attempt_id in attempt_ids:
        executors.reap(attempt_id)


@pytest.mark.parametrize("record", ["written", "never_written"])
def test_reap_held_by_a_killed_worker_is_done_within_a_lease(stack, tmp_path, leftovers, record):
    api, r = stack.api, stack.r
    machine = f"reap-host-{record}"
    control = Celery("reap-test", broker=stack.redis_url, set_as_current=False)

    def answers(name: str) -> bool:
        return bool(control.control.ping(destination=[node(name)], timeout=0.5))

    start_worker(stack, "keeper", machine, names.DEFAULT_QUEUE)
    holder = start_worker(stack, "holder", machine, names.fires_queue(machine), concurrency=1)
    wait_for(lambda: answers("keeper") and answers("holder"), timeout=60, message="workers up")

    marker = tmp_path / "started"
    body = {
        "title": "left behind",
        "prompt": f"child sleep:300 started:{marker}",
        "path": str(tmp_path),
        "backend": "claude-code",
        "machine": machine,
    }
    job_id = api.post("/jobs", json=body).json()["job_id"]
    wait_for(marker.exists, timeout=60, message="the executor to start")
    attempt_id = jobs.flags(r, job_id)["attempt"]
    leftovers.append(attempt_id)
    assert len(executors.pids_of(attempt_id)) == 2  # the agent and its child

    # Freeze the holder's pool process: the supervisor stops renewing the lease.
    pool = children(holder.pid)
    assert pool, "the holder has no pool process"
    for pid in pool:
        os.kill(pid, signal.SIGSTOP)
    if record == "never_written":
        r.hdel(keys.executors(machine), attempt_id)

    wait_for(
        lambda: reap_held(stack, attempt_id), timeout=30, message="the holder to take the reap"
    )
    assert jobs.flags(r, job_id)["state"] == "unavailable"
    assert executors.pids_of(attempt_id), "the reap ran before the kill"
    killed_at = time.monotonic()
    stack.stop("holder", sig=signal.SIGKILL)
    assert executors.pids_of(attempt_id), "the kill took the executor with it"

    # The keeper, up since before the fire, now takes the machine's queue too.
    queue = names.fires_queue(machine)
    assert control.control.add_consumer(queue, destination=[node("keeper")], reply=True)
    wait_for(
        lambda: not executors.pids_of(attempt_id),
        timeout=BOUND_S * 4,
        message="the leftover executor and its child to be reaped",
    )
    elapsed = time.monotonic() - killed_at
    print(
        f"\n[{record}] leftovers reaped {elapsed:.2f} s after the holder's kill "
        f"(lease {LEASE_S} s, sweep every {SWEEP_S} s, bound {BOUND_S} s)"
    )
    assert elapsed <= BOUND_S
    wait_for(lambda: attempt_id not in executor_records.on_machine(r, machine), timeout=10)
    wait_for(lambda: f"leftover process(es) of {attempt_id}" in stack.log("keeper"), timeout=10)
    doc = api.get(f"/jobs/{job_id}").json()["status"]
    assert (doc["state"], doc["state_reason"]) == ("unavailable", "runner_interrupted")
    assert len(doc["runner"]["attempts"]) == 1
    control.close()
