"""Offline sweep: a host stops heartbeating; the real sweep task, run by a real Celery worker,
marks it offline and requeues its claimed sessions with their original priority."""

from __future__ import annotations

from dispatchyard.state import clock, keys
from tasks import sweeps
from tests.support import records
from tests.support.waits import wait_for


def test_sweep_marks_offline_and_requeues(api, org, r, celery_worker):
    records.project(api, org)
    w = records.register(api, org, capacity=5)
    token = w["runtimeToken"]
    low = records.enqueue(api, org, priority=4)["sessionId"]
    high = records.enqueue(api, org, priority=2)["sessionId"]
    running = records.enqueue(api, org, priority=1)["sessionId"]
    scores = {sid: r.zscore(keys.WORK_QUEUE, sid) for sid in (low, high, running)}
    assert len(api.get(f"/api/workers/{w['workerId']}/poll", token).json()["work"]) == 3
    api.post(
        f"/api/sessions/{running}/status",
        token,
        json={"workerId": w["workerId"], "status": "running"},
    )

    # 179 s after its last heartbeat, just inside the 180 s window: the sweep (the task, run
    # here so its answer can be read) leaves it and its sessions alone.
    last = int(r.zscore(keys.HOST_HEARTBEATS, w["workerId"]))
    clock.advance((last + 179_000 - clock.now_ms()) / 1000)
    marked = sweeps.offline_hosts.apply().get()
    assert w["workerId"] not in marked
    assert r.hget(keys.host(w["workerId"]), "status") == "active"
    for sid in (low, high):
        assert r.get(keys.claim(sid)) == w["workerId"]
        assert r.zscore(keys.WORK_QUEUE, sid) is None
    # Past the window (181 s): the real worker's sweep marks it offline.
    other = records.register(api, org)  # a live host, to see the sweep ran
    clock.advance(2)
    api.post(
        f"/api/workers/{other['workerId']}/heartbeat",
        other["runtimeToken"],
        json={"activeCount": 0},
    )
    sweeps.offline_hosts.delay()
    wait_for(
        lambda: r.hget(keys.host(w["workerId"]), "status") == "offline",
        timeout=20,
        message="the sweep to mark the host offline",
    )
    assert r.hget(keys.host(other["workerId"]), "status") == "active"
    for sid in (low, high):
        assert r.zscore(keys.WORK_QUEUE, sid) == scores[sid], "priority/position changed"
        assert r.hget(keys.session(sid), "status") == "queued"
        assert not r.exists(keys.claim(sid))
    assert r.hget(keys.session(running), "status") == "running"
    row = next(
        x for x in api.get("/api/workers", org.key).json()["workers"] if x["id"] == w["workerId"]
    )
    assert row["status"] == "offline"
    # The requeued sessions go to the next poller, best first.
    got = api.get(f"/api/workers/{other['workerId']}/poll", other["runtimeToken"]).json()
    assert got["claimedSessionIds"] == [high, low]
    # The host comes back with a heartbeat.
    api.post(f"/api/workers/{w['workerId']}/heartbeat", token, json={"activeCount": 1})
    assert r.hget(keys.host(w["workerId"]), "status") == "active"


def test_sweep_twice_changes_nothing_twice(api, org, r):
    from dispatchyard.state import heartbeats

    records.project(api, org)
    w = records.register(api, org)
    sid = records.enqueue(api, org)["sessionId"]
    api.get(f"/api/workers/{w['workerId']}/poll", w["runtimeToken"])
    now = clock.now_ms() + 200_000
    first = heartbeats.sweep_offline(r, now, 180_000)
    assert first.get(w["workerId"]) == [sid]
    assert w["workerId"] not in heartbeats.sweep_offline(r, now, 180_000)
    assert r.zscore(keys.WORK_QUEUE, sid) is not None
