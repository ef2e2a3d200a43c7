"""Races closed, each with real concurrency against the real Redis:

- the scheduler tick's lock is released only by the tick that holds it, even when its lock
  expired while it ran and a later tick took it;
- the lease sweep decides cancelled vs unavailable inside its transaction, so a cancel that
  lands while the sweep runs is never lost;
- a persistent fire opens its ask and marks the job delivered in one transaction, so a cancel
  racing the fire never leaves an open ask for an ended job (nor a delivered job without one).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from dispatchyard.state import asks, clock, job_shape, jobs, keys, locks
from dispatchyard.state.errors import Conflict
from dispatchyard.state.models import JobState
from tasks import tick


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released at the same instant; their results (None when one
    was refused)."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        with contextlib.suppress(Conflict):
            results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def test_tick_lock_is_released_only_by_its_holder(r, monkeypatch):
    # A tick whose lock expires while it runs (1 ms here), and a later tick that takes it: the
    # first tick's release must leave the later tick's lock alone.
    monkeypatch.setattr(tick, "LOCK_MS", 1)
    interleaved = 0
    for _ in range(30):
        r.delete(keys.SCHEDULER_LOCK)
        stop = threading.Event()

        def take_over(stop: threading.Event = stop) -> str | None:
            while not stop.is_set():
                token = locks.acquire(r, keys.SCHEDULER_LOCK, 60_000)
                if token:
                    return token
            return None

        def first_tick(stop: threading.Event = stop) -> None:
            tick.tick()
            stop.set()

        _, later = race(first_tick, take_over)
        if later is not None:
            # Whether it took the lock before or after the first tick ended, the lock is its.
            interleaved += 1
            assert r.get(keys.SCHEDULER_LOCK) == later
    r.delete(keys.SCHEDULER_LOCK)
    assert interleaved > 0, "the later tick never took the lock while the first one ran"


def test_lock_release_is_compare_and_delete(r):
    first = locks.acquire(r, "test:lock", 30)
    assert first is not None
    deadline = clock.now() + 5
    while r.exists("test:lock") and clock.now() < deadline:
        pass
    second = locks.acquire(r, "test:lock", 60_000)
    assert second is not None and locks.acquire(r, "test:lock", 60_000) is None
    assert locks.release(r, "test:lock", first) is False
    assert r.get("test:lock") == second
    assert locks.release(r, "test:lock", second) is True


def _dispatching_job(r, lease_ms: int) -> tuple[str, str]:
    doc = job_shape.new_doc({"title": "race"}, clock.now_ms())
    jobs.create(r, doc, clock.now_ms(), due_ms=clock.now_ms())
    acquired = jobs.acquire(
        r,
        doc["job_id"],
        now_ms=clock.now_ms(),
        fire_key="k",
        why="due",
        lease_ms=lease_ms,
        machine="race-host",
    )
    return doc["job_id"], acquired["runner"]["current_attempt_id"]


def test_lease_sweep_and_cancel_race_keep_the_cancel(r):
    """200 expired leases, each swept while a cancel is requested at the same moment: when the
    cancel committed first, the sweep ends the job `cancelled`, never `unavailable` with the
    cancel lost."""
    seen = {"cancel_first": 0, "sweep_first": 0}
    for _ in range(200):
        job_id, attempt_id = _dispatching_job(r, lease_ms=1)
        later = clock.now_ms() + 10
        cancel = partial(jobs.request_cancel, r, job_id, by="racer", reason="stop", now_ms=later)
        _, after_cancel = race(partial(jobs.lease_lost, r, job_id, attempt_id, later), cancel)
        doc = jobs.get(r, job_id)
        if after_cancel["state"] == JobState.DISPATCHING:
            # The cancel committed while the attempt still ran: the sweep must have seen it.
            assert (doc["state"], doc["state_reason"]) == ("cancelled", "stop")
            seen["cancel_first"] += 1
        else:
            assert after_cancel["state"] == JobState.UNAVAILABLE
            assert doc["state_reason"] == "runner_interrupted" and doc["cancel_requested"]
            seen["sweep_first"] += 1
    assert seen["cancel_first"] > 0


def test_persistent_delivery_and_cancel_race_leave_no_orphan_ask(r):
    """The ask and `delivered` are one transaction: after a fire racing a cancel, the job
    records its delivery exactly when its ask exists — never an ask for a job that was not
    handed over, never a delivered job without its ask."""
    seen = {"delivered": 0, "not_delivered": 0}
    for i in range(200):
        job_id, attempt_id = _dispatching_job(r, lease_ms=60_000)
        cid = f"ask-race{i:04d}"
        now = clock.now_ms()
        opening = partial(
            asks.write_open,
            from_peer="runner",
            to_peer_id="repow-x-00000000",
            to_peer="x",
            text="job",
            now_ms=now,
            correlation_id=cid,
        )
        deliver = partial(
            jobs.delivered,
            r,
            job_id,
            attempt_id,
            peer_id="repow-x-00000000",
            correlation_id=cid,
            now_ms=now,
            extra=opening,
        )
        race(deliver, partial(jobs.request_cancel, r, job_id, by="racer", reason="s", now_ms=now))
        doc = jobs.get(r, job_id)
        handed_over = doc.get("correlation_id") == cid
        assert (asks.get(r, cid) is not None) == handed_over
        seen["delivered" if handed_over else "not_delivered"] += 1
    assert seen["delivered"] > 0 and seen["not_delivered"] > 0
