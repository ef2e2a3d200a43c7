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
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from dispatchyard.state import asks, clock, job_shape, jobs, keys, locks
from dispatchyard.state.errors import Conflict
from dispatchyard.state.models import JobState
from tasks import tick


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released at the same instant; their results (None when one
    was refused with a Conflict). Any other exception in a thread is raised here, and a thread
    still running after 10 s fails the test: a race whose side died proves nothing."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(10)
            with contextlib.suppress(Conflict):
                results[i] = call()
        except BaseException as e:  # re-raised in the test's thread below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"race threads still running after 10 s: {stuck}"
    if errors:
        raise errors[0]
    return results


def test_tick_lock_is_released_only_by_its_holder(r, monkeypatch):
    """A tick whose lock expired while it ran (1 ms here) and a later tick that took it: the
    first tick's release must leave the later tick's lock alone. Every round is that case:
    the first tick's acquire and release are the real ones, wrapped only to order the race —
    the later tick starts taking the lock once the first holds it, and the first releases
    only once the later one holds it."""
    monkeypatch.setattr(tick, "LOCK_MS", 1)
    acquire, release = locks.acquire, locks.release
    rounds: list[dict[str, Any]] = []

    def first_tick() -> dict[str, int]:
        rounds[-1]["thread"] = threading.get_ident()
        return tick.tick()

    def mine() -> bool:  # a call of the first tick's (any other caller passes through)
        return rounds[-1].get("thread") == threading.get_ident()

    def first_acquire(client: Any, key: str, ttl_ms: int) -> str | None:
        token = acquire(client, key, ttl_ms)
        if not mine():
            return token
        rounds[-1]["own"] = token
        rounds[-1]["first_holds"].set()
        return token

    def first_release(client: Any, key: str, token: str) -> bool:
        if not mine():
            return release(client, key, token)
        assert rounds[-1]["later_holds"].wait(10), "the later tick never took the lock"
        rounds[-1]["held_at_release"] = client.get(key)
        released = release(client, key, token)
        rounds[-1]["released"] = released
        return released

    monkeypatch.setattr(locks, "acquire", first_acquire)
    monkeypatch.setattr(locks, "release", first_release)

    def take_over() -> str:
        assert rounds[-1]["first_holds"].wait(10), "the first tick never took the lock"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            token = acquire(r, keys.SCHEDULER_LOCK, 60_000)  # the real one
            if token:
                rounds[-1]["later_holds"].set()
                return token
        raise AssertionError("the first tick's 1 ms lock never expired")

    for _ in range(30):
        r.delete(keys.SCHEDULER_LOCK)
        rounds.append({"first_holds": threading.Event(), "later_holds": threading.Event()})
        _, later = race(first_tick, take_over)
        done = rounds[-1]
        assert done["own"] is not None, "the first tick did not run"
        # The lock was the later tick's when the first released: the foreign-lock case ran...
        assert done["held_at_release"] == later != done["own"], done
        # ...and the release refused it and left it alone.
        assert done["released"] is False, done
        assert r.get(keys.SCHEDULER_LOCK) == later
    r.delete(keys.SCHEDULER_LOCK)
    assert len(rounds) == 30


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
