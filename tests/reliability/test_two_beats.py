"""Two beat processes running across several due minutes with hundreds of templates due in
each minute: each due time is materialized exactly once (and none is missed).

Time runs 12 times faster in every process of this test (the movable clock: one real second is
twelve seconds of schedule), so five due minutes pass in about twenty-five seconds."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import defaultdict

import pytest

from dispatchyard.state import clock, keys, template_rules, templates
from tests.support.stack import Stack
from tests.support.waits import wait_for

TEMPLATES = 200
RATE = 12
MINUTES = 5


@pytest.fixture
def fast_time(tmp_path_factory):
    anchor = int(time.time() * 1000)
    env = {
        "DISPATCHYARD_CLOCK_RATE": str(RATE),
        "DISPATCHYARD_CLOCK_ANCHOR_MS": str(anchor),
        "DISPATCHYARD_TEMPLATE_TICK_S": "0.2",
        "DISPATCHYARD_JOB_LEASE_S": "60",
    }
    clock.configure(RATE, anchor)
    try:
        with Stack(tmp_path_factory.mktemp("beats"), **env) as s:
            yield s
    finally:
        clock.configure(1.0, 0)


def test_two_beats_materialize_each_due_time_once(fast_time):
    r = fast_time.r
    cal_ids = []
    now = clock.now_ms()
    for i in range(TEMPLATES):
        doc = template_rules.new_doc(
            {"title": f"beat-{i}", "cron": "* * * * *", "overlap": "allow", "circle": "beats"},
            now,
        )
        templates.create(r, doc, now)
        cal_ids.append(doc["calendar_id"])
    first_due = clock.parse_ms(templates.get(r, cal_ids[0])["next_due_at"])
    fast_time.worker("beat-worker-1", machine="beat-host")
    fast_time.worker("beat-worker-2", machine="beat-host")
    fast_time.beat("beat-1")
    fast_time.beat("beat-2")
    end = first_due + MINUTES * 60_000
    wait_for(lambda: clock.now_ms() > end + 20_000, timeout=MINUTES * 60 / RATE + 30, interval=0.2)
    for name in ("beat-1", "beat-2"):
        fast_time.stop(name)
    logs = fast_time.log("beat-1") + fast_time.log("beat-2")
    assert logs.count("beat: Acquired lock") >= 1

    due_times = defaultdict(list)
    for raw in r.hvals(keys.JOB_DOCS):
        doc = json.loads(raw)
        if doc.get("source_kind") == "calendar" and doc.get("circle") == "beats":
            due = doc["provenance"]["calendar"]["scheduled_due_at"]
            due_times[doc["source_id"]].append(clock.parse_ms(due))
    assert set(due_times) == set(cal_ids)
    for cal_id in cal_ids:
        times = sorted(due_times[cal_id])
        assert len(times) == len(set(times)), f"{cal_id}: a due time materialized twice"
        window = [t for t in times if t <= end]
        expected = list(range(first_due, end + 1, 60_000))
        assert window == expected, f"{cal_id}: due times missed or extra: {window}"


def test_racing_materializations_make_one_child(r):
    """The same due time handled twice at once (a redelivered tick, a second scheduler): the
    transaction lets exactly one of them create the child."""
    now = clock.now_ms()
    docs = [
        template_rules.new_doc({"title": f"race-{i}", "cron": "* * * * *", "overlap": "allow"}, now)
        for i in range(100)
    ]
    for doc in docs:
        templates.create(r, doc, now)
    outcomes = defaultdict(list)
    start = threading.Barrier(4)

    def racer(doc):
        due = clock.parse_ms(doc["next_due_at"])
        start.wait()
        outcome, child = templates.materialize(r, doc["calendar_id"], due, due + 100)
        outcomes[doc["calendar_id"]].append((outcome, child))

    for doc in docs:
        start = threading.Barrier(4)
        threads = [threading.Thread(target=racer, args=(doc,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for doc in docs:
        results = sorted(o for o, _ in outcomes[doc["calendar_id"]])
        assert results == ["created", "stale", "stale", "stale"], results


def test_leader_killed_the_other_beat_takes_over_with_nothing_missed_or_doubled(tmp_path):
    """Two beats; the leader is SIGKILLed after the first due minute. The other takes the lock
    within the lock timeout (2 s here: 24 s of schedule, under one due interval), and every
    due time of every template is still materialized exactly once."""
    anchor = int(time.time() * 1000)
    env = {
        "DISPATCHYARD_CLOCK_RATE": str(RATE),
        "DISPATCHYARD_CLOCK_ANCHOR_MS": str(anchor),
        "DISPATCHYARD_TEMPLATE_TICK_S": "0.2",
        "DISPATCHYARD_JOB_LEASE_S": "60",
        "DISPATCHYARD_BEAT_LOCK_TIMEOUT_S": "2",
    }
    with Stack(tmp_path, **env) as stack:
        r = stack.r
        clock.configure(RATE, anchor)
        try:
            now = clock.now_ms()
            cal_ids = []
            for i in range(100):
                body = {"title": f"fo-{i}", "cron": "* * * * *", "overlap": "allow", "circle": "fo"}
                doc = template_rules.new_doc(body, now)
                templates.create(r, doc, now)
                cal_ids.append(doc["calendar_id"])
            first_due = clock.parse_ms(templates.get(r, cal_ids[0])["next_due_at"])
            stack.worker("fo-worker", machine="fo-host")
            stack.beat("fo-beat-1")
            wait_for(lambda: "Acquired lock" in stack.log("fo-beat-1"), timeout=30)
            stack.beat("fo-beat-2")
            # After the first due minute, the leader dies without a word.
            wait_for(lambda: clock.now_ms() > first_due + 5_000, timeout=60, interval=0.1)
            killed_at = time.monotonic()
            stack.stop("fo-beat-1", sig=signal.SIGKILL)
            wait_for(lambda: "Acquired lock" in stack.log("fo-beat-2"), timeout=30)
            takeover_s = time.monotonic() - killed_at
            end = first_due + 3 * 60_000
            wait_for(lambda: clock.now_ms() > end + 20_000, timeout=60, interval=0.2)
            stack.stop("fo-beat-2")
        finally:
            stack.stop_all()
            clock.configure(1.0, 0)
        assert takeover_s < 2 + 3, f"takeover took {takeover_s:.1f} s"
        due_times = defaultdict(list)
        for raw in r.hvals(keys.JOB_DOCS):
            doc = json.loads(raw)
            if doc.get("source_kind") == "calendar" and doc.get("circle") == "fo":
                due_times[doc["source_id"]].append(
                    clock.parse_ms(doc["provenance"]["calendar"]["scheduled_due_at"])
                )
        expected = list(range(first_due, end + 1, 60_000))
        for cal_id in cal_ids:
            times = sorted(due_times[cal_id])
            assert len(times) == len(set(times)), f"{cal_id}: a due time materialized twice"
            assert [t for t in times if t <= end] == expected, f"{cal_id}: missed {times}"
