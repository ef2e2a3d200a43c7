"""Scheduled messages fire exactly once per due time with real beat and worker processes: two
beats at once, a beat stopped and restarted across due times (what was missed fires once, no
backfill), and the same due time claimed by racing threads.

Time runs 12 times faster in every process of these tests (the movable clock: one real second
is twelve seconds of schedule), so a due minute passes every five seconds. Every schedule
delivers to a peer that polls, so each delivery is queued and can be counted exactly."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter, defaultdict

import pytest

from dispatchyard.state import clock, deliveries, keys, schedule_rules, schedules
from dispatchyard.state.clock import iso, parse_ms
from tasks import schedules as schedule_tasks
from tests.support.stack import Stack
from tests.support.waits import wait_for

RATE = 12
MINUTE = 60_000


@pytest.fixture
def fast_time(tmp_path_factory):
    anchor = int(time.time() * 1000)
    env = {
        "DISPATCHYARD_CLOCK_RATE": str(RATE),
        "DISPATCHYARD_CLOCK_ANCHOR_MS": str(anchor),
        "DISPATCHYARD_TEMPLATE_TICK_S": "0.2",
    }
    # This process (its clock waits, its assertions) runs on the stack's fast clock; the tests
    # create schedules through the stack's gunicorn.
    clock.configure(RATE, anchor)
    try:
        with Stack(tmp_path_factory.mktemp("schedule-beats"), **env) as s:
            s.gunicorn()
            yield s
    finally:
        clock.configure(1.0, 0)


def polling_peer(api) -> tuple[str, str]:
    """A fresh circle and the id of a peer `bob` in it that polls for its deliveries."""
    c = f"r{secrets.token_hex(3)}"
    body = {"name": "bob", "circle": c, "metadata": {"repowire_cli_fallback": True}}
    resp = api.post("/peers", json=body)
    assert resp.status_code == 200, resp.text
    return c, resp.json()["peer_id"]


def create(api, c: str, text: str, **when) -> dict:
    body = {"from_peer": "sched-sender", "to_peer": "bob", "circle": c, "text": text, **when}
    resp = api.post("/schedules", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def get(api, schedule_id: str) -> dict:
    return api.get(f"/schedules/{schedule_id}").json()


def wait_fires(api, schedule_id: str, count: int, timeout: float = 60) -> dict:
    """Until the schedule's `count`-th fire has its outcome recorded (no sleeping past it)."""

    def fired():
        doc = get(api, schedule_id)
        outcome = doc.get("last_outcome") or {}
        return doc["fire_count"] >= count and outcome.get("status") != "firing" and doc

    return wait_for(fired, timeout=timeout, interval=0.1, message=f"{schedule_id} x{count}")


def wait_clock(until_ms: int) -> None:
    wait_for(
        lambda: clock.now_ms() > until_ms,
        timeout=(until_ms - clock.now_ms()) / RATE / 1000 + 30,
        interval=0.05,
    )


def delivered_texts(r, peer_id: str) -> Counter:
    texts: Counter = Counter()
    while batch := deliveries.drain(r, peer_id, 500):
        texts.update(d["text"] for d in batch)
    return texts


def fired_due_times(r, schedule_ids) -> dict[str, list[int]]:
    """The due time of every recorded fire, by schedule, from the event log."""
    wanted = set(schedule_ids)
    found: dict[str, list[int]] = defaultdict(list)
    for _, fields in r.xrange(keys.EVENTS):
        if fields.get("type") != "schedule_fired":
            continue
        data = json.loads(fields["data"])
        if data["schedule_id"] in wanted:
            found[data["schedule_id"]].append(parse_ms(data["due_at"]))
    return found


def start(stack: Stack, api, c: str, *beats: str) -> None:
    """A worker and the given beats; returns once a probe schedule has fired through them."""
    stack.worker("sched-worker-1", machine="sched-host")
    for name in beats:
        stack.beat(name)
    probe = create(api, c, "probe", fire_at=iso(clock.now_ms()))
    wait_fires(api, probe["schedule_id"], 1)


def test_two_beats_fire_each_due_time_once(fast_time):
    api, r = fast_time.api, fast_time.r
    c, bob = polling_peer(api)
    fast_time.worker("sched-worker-2", machine="sched-host")
    start(fast_time, api, c, "sched-beat-1", "sched-beat-2")
    now = clock.now_ms()
    one_shots = [
        create(api, c, f"once-{i}", fire_at=iso(now + 20_000 + i * 9_000)) for i in range(12)
    ]
    recurring = [create(api, c, f"every-{i}", cron="* * * * *") for i in range(6)]
    # Past due before it is created (as after downtime): fires once, at the next tick.
    overdue = create(api, c, "overdue", fire_at=iso(now - 3600_000))
    first_due = parse_ms(recurring[0]["fire_at"])
    end = first_due + 3 * MINUTE
    wait_clock(end + 15_000)
    # Beats first, then the workers (a warm shutdown finishes a fire in flight): nothing
    # changes while the fires are counted.
    for name in ("sched-beat-1", "sched-beat-2", "sched-worker-1", "sched-worker-2"):
        fast_time.stop(name)
    logs = fast_time.log("sched-beat-1") + fast_time.log("sched-beat-2")
    assert logs.count("beat: Acquired lock") >= 1

    texts = delivered_texts(r, bob)
    for doc in [*one_shots, overdue]:
        fired = wait_fires(api, doc["schedule_id"], 1)
        assert (fired["state"], fired["fire_count"]) == ("fired", 1)
        assert fired["last_due_at"] == doc["fire_at"]
        assert fired["last_outcome"]["status"] == "queued"
        assert texts[doc["text"]] == 1, doc["text"]
    due_times = fired_due_times(r, [d["schedule_id"] for d in recurring])
    expected = list(range(first_due, end + 1, MINUTE))
    for doc in recurring:
        times = due_times[doc["schedule_id"]]
        assert len(times) == len(set(times)), f"{doc['text']}: a due time fired twice"
        assert [t for t in times if t <= end] == expected, f"{doc['text']}: {times}"
        assert texts[doc["text"]] == len(times) == get(api, doc["schedule_id"])["fire_count"]
        api.delete(f"/schedules/{doc['schedule_id']}")


def test_beat_restarted_across_due_times_fires_the_missed_ones_once(fast_time):
    api, r = fast_time.api, fast_time.r
    c, bob = polling_peer(api)
    start(fast_time, api, c, "sched-beat-a")
    every = create(api, c, "every", cron="* * * * *")
    sid = every["schedule_id"]
    wait_fires(api, sid, 1)
    fast_time.stop("sched-beat-a")
    # Whatever fired while the beat was stopping counts; from here on no beat runs.
    stopped = get(api, sid)
    fired_before, waiting = stopped["fire_count"], parse_ms(stopped["fire_at"])
    missed = create(api, c, "missed", fire_at=iso(clock.now_ms() + 10_000))
    # Down across two due times of `every` and the one-shot's due time.
    wait_clock(waiting + MINUTE + 10_000)
    assert get(api, sid)["fire_count"] == fired_before
    assert get(api, missed["schedule_id"])["state"] == "pending"
    fast_time.beat("sched-beat-b")

    late = wait_fires(api, missed["schedule_id"], 1)
    assert (late["state"], late["fire_count"]) == ("fired", 1)
    assert parse_ms(late["last_fired_at"]) > waiting + MINUTE
    again = wait_fires(api, sid, fired_before + 1)
    # The due time it waited for fires once, late; the next is computed from now.
    assert again["last_due_at"] == iso(waiting)
    restarted_at = parse_ms(again["last_fired_at"])
    assert restarted_at > waiting + MINUTE
    wait_fires(api, sid, fired_before + 2)
    for name in ("sched-beat-b", "sched-worker-1"):
        fast_time.stop(name)

    times = fired_due_times(r, [sid])[sid]
    assert len(times) == len(set(times)), "a due time fired twice"
    assert times[fired_before - 1 : fired_before + 1] == [waiting - MINUTE, waiting]
    assert waiting + MINUTE not in times, "a missed due time was backfilled"
    assert all(t > restarted_at and t % MINUTE == 0 for t in times[fired_before + 1 :])
    final = get(api, sid)
    assert parse_ms(final["last_due_at"]) == times[-1]
    texts = delivered_texts(r, bob)
    assert texts["missed"] == 1
    assert texts["every"] == len(times) == final["fire_count"]
    api.delete(f"/schedules/{sid}")


def test_racing_claims_deliver_each_due_time_once(api, r):
    """One due time fired by four threads at once (a redelivered task, a second tick): the
    claim transaction lets exactly one of them deliver."""
    c, bob = polling_peer(api)
    now = clock.now_ms()
    docs = []
    for i in range(40):
        doc = schedule_rules.new_doc(
            {
                "from_peer": "sched-sender",
                "to_peer": "bob",
                "circle": c,
                "text": f"race-{i}",
                "fire_at": iso(now - 1000),
            },
            now,
        )
        docs.append(schedules.create(r, doc))
    results: dict[str, list] = defaultdict(list)
    for doc in docs:
        due = parse_ms(doc["fire_at"])
        barrier = threading.Barrier(4)

        def racer(sid=doc["schedule_id"], due=due, barrier=barrier):
            barrier.wait()
            results[sid].append(schedule_tasks.fire_one(r, sid, due))

        threads = [threading.Thread(target=racer) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    texts = delivered_texts(r, bob)
    for doc in docs:
        outcomes = results[doc["schedule_id"]]
        assert sorted(o is None for o in outcomes) == [False, True, True, True]
        assert texts[doc["text"]] == 1
        assert schedules.get(r, doc["schedule_id"])["fire_count"] == 1
