"""Claim race: 20 concurrent pollers against 1,000 queued sessions: each claimed once."""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter

from tests.support import records
from tests.support.http import Api

SESSIONS = 1000
POLLERS = 20


def test_each_session_claimed_exactly_once_in_priority_order(shim_url, api, org, r):
    records.project(api, org)
    rng = random.Random(7)
    queued = {}
    for _ in range(SESSIONS):
        body = records.enqueue(api, org, priority=rng.randint(1, 5))
        queued[body["sessionId"]] = body
    workers = [records.register(api, org, capacity=SESSIONS) for _ in range(POLLERS)]
    batches: list[tuple[str, list[dict]]] = []
    lock = threading.Lock()
    start = threading.Barrier(POLLERS)
    errors = []

    def poller(w):
        client = Api(shim_url)  # its own connection
        start.wait()
        try:
            while True:
                resp = client.get(f"/api/workers/{w['workerId']}/poll", w["runtimeToken"])
                assert resp.status_code == 200, resp.text
                work = resp.json()["work"]
                if not work:
                    return
                with lock:
                    batches.append((w["workerId"], work))
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=poller, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors

    claimed = Counter(item["sessionId"] for _, work in batches for item in work)
    assert set(claimed) == set(queued), "a session was lost"
    assert max(claimed.values()) == 1, "a session was claimed twice"
    assert len({wid for wid, _ in batches}) > 1, "no real concurrency happened"

    # Redis agrees: nothing left queued for this org, every claim marker names its claimer.
    from dispatchyard.state import keys

    assert r.zcard(keys.org_queue(org.id)) == 0
    pipe = r.pipeline()
    for _wid, work in batches:
        for item in work:
            pipe.get(keys.claim(item["sessionId"]))
            pipe.hmget(keys.session(item["sessionId"]), "status", "workerId", "claimedAt")
    out = pipe.execute()
    owners = [wid for wid, work in batches for _ in work]
    for owner, marker, (status, worker_id, _) in zip(owners, out[::2], out[1::2], strict=True):
        assert marker == owner and worker_id == owner and status == "claimed"
    assert not any(r.hmget(keys.WORK_ITEMS, list(queued))), "a claimed payload is still queued"

    # Priorities: every poll pops the head of the queue atomically, so each batch is a
    # contiguous run of the (priority, queuedAt, id) order: batches never interleave.
    def key(item):
        return (item["priority"] * 10**13 + item["queuedAt"], item["sessionId"])

    runs = []
    for _, work in batches:
        ordered = [key(i) for i in work]
        assert ordered == sorted(ordered), "a batch was not best-first"
        runs.append((ordered[0], ordered[-1]))
    runs.sort()
    for (_, last), (first, _) in itertools.pairwise(runs):
        assert last < first, "two polls interleaved: one skipped better work"
