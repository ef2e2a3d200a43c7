"""/schedules (docs/api.md) over real HTTP: shapes, 400s, 404s and 422s as repowire 0.17
answers them; and fires run by the real Celery worker (the scheduler tick sent through the
broker), delivered through the mesh to a peer that polls or holds a live socket."""

from __future__ import annotations

import secrets

import pytest

from dispatchyard.state import clock, deliveries, schedules
from dispatchyard.state.clock import iso, parse_ms
from tasks import schedules as schedule_tasks
from tasks import tick
from tests.support.mesh_client import MeshPeer
from tests.support.waits import wait_for

LATER = "2999-01-01T00:00:00+00:00"
WIRE_KEYS = {
    # repowire's ScheduleResponse
    *("schedule_id", "from_peer", "to_peer", "text", "fire_at", "kind", "circle", "cron"),
    "created_at",
    # dispatchyard's additions: the timezone and the fire record
    *("timezone", "state", "fire_count", "last_fired_at", "last_due_at", "last_outcome"),
    "updated_at",
}


def circle() -> str:
    return f"s{secrets.token_hex(3)}"


def create(api, **body):
    body = {"from_peer": "sched-sender", "to_peer": "bob", "text": "check in", **body}
    resp = api.post("/schedules", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def get(api, schedule_id):
    resp = api.get(f"/schedules/{schedule_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def polling_peer(api, c: str, name: str = "bob") -> str:
    """A peer that polls: what is delivered to it is queued, and read back exactly."""
    body = {"name": name, "circle": c, "metadata": {"repowire_cli_fallback": True}}
    resp = api.post("/peers", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()["peer_id"]


def tick_on_worker():
    """One scheduler tick, run by the real worker (as beat would send it)."""
    tick.tick.delay()


def wait_fired(api, schedule_id, count=1):
    """Tick until the schedule's `count`-th fire has its outcome recorded."""

    def fired():
        doc = get(api, schedule_id)
        if doc["fire_count"] >= count and doc["last_outcome"]["status"] != "firing":
            return doc
        tick_on_worker()
        return None

    return wait_for(fired, timeout=20, interval=0.1, message=f"{schedule_id} fire {count}")


# Routes


def test_create_one_shot_answers_repowires_shape_plus_timezone(api):
    c = circle()
    doc = create(api, fire_at="2999-01-01T09:30:00+02:00", circle=c)
    assert set(doc) == WIRE_KEYS
    assert doc["schedule_id"].startswith("sched-") and len(doc["schedule_id"]) == 14
    assert doc["fire_at"] == "2999-01-01T07:30:00+00:00"
    assert (doc["kind"], doc["circle"], doc["cron"], doc["timezone"]) == ("notify", c, None, "UTC")
    assert (doc["state"], doc["fire_count"], doc["last_outcome"]) == ("pending", 0, None)
    assert doc["created_at"].endswith("+00:00")
    assert get(api, doc["schedule_id"]) == doc
    api.delete(f"/schedules/{doc['schedule_id']}")


def test_naive_fire_at_is_utc(api):
    doc = create(api, fire_at="2999-01-01T09:30:00", timezone="Asia/Tokyo")
    assert doc["fire_at"] == "2999-01-01T09:30:00+00:00"
    assert doc["timezone"] == "Asia/Tokyo"
    api.delete(f"/schedules/{doc['schedule_id']}")


def test_create_cron_waits_for_the_next_time_in_its_timezone(api):
    doc = create(api, cron=" 0   9 * * * ", timezone="America/New_York", kind="ask")
    assert doc["cron"] == "0 9 * * *"
    assert doc["kind"] == "ask"
    due = parse_ms(doc["fire_at"])
    assert 0 < due - clock.now_ms() <= 24 * 3600 * 1000
    # 09:00 in New York is 13:00 or 14:00 UTC, depending on daylight saving time.
    assert doc["fire_at"][11:] in ("13:00:00+00:00", "14:00:00+00:00")
    api.delete(f"/schedules/{doc['schedule_id']}")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "provide exactly one of fire_at or cron"),
        ({"fire_at": LATER, "cron": "* * * * *"}, "provide exactly one of fire_at or cron"),
        ({"fire_at": "soon"}, "fire_at must be ISO-8601: Invalid isoformat string: 'soon'"),
        ({"fire_at": "9999-12-31T23:00:00-05:00"}, "fire_at is out of range"),
        ({"fire_at": LATER, "kind": "email"}, "kind must be one of ['ask', 'notify']; got 'email'"),
        ({"cron": "* * *"}, None),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "unknown timezone: Mars/Olympus"),
        ({"fire_at": LATER, "timezone": "../etc/passwd"}, "unknown timezone: ../etc/passwd"),
    ],
)
def test_refused_with_400(api, body, detail):
    resp = api.post("/schedules", json={"from_peer": "a", "to_peer": "b", "text": "t", **body})
    assert resp.status_code == 400, resp.text
    assert isinstance(resp.json()["detail"], str)
    if detail is not None:
        assert resp.json()["detail"] == detail


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        ({"to_peer": "b", "text": "t", "fire_at": LATER}, ["body", "from_peer"], "missing"),
        ({"from_peer": "a", "text": "t", "fire_at": LATER}, ["body", "to_peer"], "missing"),
        ({"from_peer": "a", "to_peer": "b", "fire_at": LATER}, ["body", "text"], "missing"),
        ({"from_peer": "a", "to_peer": "b", "text": "t", "fire_at": 5}, ["body", "fire_at"], None),
        (
            {"from_peer": "a", "to_peer": "b", "text": ["t"], "cron": "@daily"},
            ["body", "text"],
            None,
        ),
        ({"from_peer": "a", "to_peer": "b", "text": "t", "kind": None}, ["body", "kind"], None),
    ],
)
def test_bad_bodies_are_422_with_fastapi_detail(api, body, loc, kind):
    resp = api.post("/schedules", json=body)
    assert resp.status_code == 422, resp.text
    errors = resp.json()["detail"]
    assert any(e["loc"] == loc and (kind is None or e["type"] == kind) for e in errors), errors


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[1, 2]", b'"text"'])
def test_malformed_bodies_are_422(api, raw):
    resp = api.post("/schedules", data=raw, headers={"Content-Type": "application/json"})
    assert resp.status_code == 422, resp.text
    assert isinstance(resp.json()["detail"], list)


def test_unknown_fields_are_ignored_as_repowire_does(api):
    doc = create(api, fire_at=LATER, priority="high")
    assert "priority" not in doc
    api.delete(f"/schedules/{doc['schedule_id']}")


def test_list_is_sorted_by_next_fire_at_and_filters_by_sender(api):
    sender = f"lister-{secrets.token_hex(3)}"
    late = create(api, from_peer=sender, fire_at="2999-03-01T00:00:00Z")
    early = create(api, from_peer=sender, fire_at="2999-01-01T00:00:00Z")
    cron = create(api, from_peer=sender, cron="0 0 1 1 *")  # next New Year, before 2999
    other = create(api, from_peer=f"other-{secrets.token_hex(3)}", fire_at=LATER)
    resp = api.get("/schedules", params={"from_peer": sender})
    assert resp.status_code == 200
    listed = resp.json()["schedules"]
    assert [s["schedule_id"] for s in listed] == [
        cron["schedule_id"],
        early["schedule_id"],
        late["schedule_id"],
    ]
    assert all(set(s) == WIRE_KEYS for s in listed)
    everything = api.get("/schedules").json()["schedules"]
    ids = [s["schedule_id"] for s in everything]
    assert {other["schedule_id"], early["schedule_id"]} <= set(ids)
    fire_times = [parse_ms(s["fire_at"]) for s in everything]
    assert fire_times == sorted(fire_times)
    assert api.get("/schedules", params={"from_peer": "nobody-at-all"}).json() == {"schedules": []}
    for doc in (late, early, cron, other):
        api.delete(f"/schedules/{doc['schedule_id']}")


def test_delete_then_404(api):
    doc = create(api, fire_at=LATER)
    sid = doc["schedule_id"]
    resp = api.delete(f"/schedules/{sid}")
    assert (resp.status_code, resp.json()) == (200, {"ok": True})
    resp = api.delete(f"/schedules/{sid}")
    assert (resp.status_code, resp.json()) == (404, {"detail": f"No schedule: {sid}"})
    assert api.get(f"/schedules/{sid}").status_code == 404
    assert sid not in [s["schedule_id"] for s in api.get("/schedules").json()["schedules"]]


@pytest.mark.parametrize("sid", ["sched-00000000", "sched-XYZ", "nope", "work-0123456789ab"])
def test_unknown_or_malformed_ids_are_404(api, sid):
    resp = api.delete(f"/schedules/{sid}")
    assert (resp.status_code, resp.json()) == (404, {"detail": f"No schedule: {sid}"})
    assert api.get(f"/schedules/{sid}").status_code == 404


# Fires, run by the real worker


@pytest.fixture
def worker(celery_worker):
    return celery_worker


def test_past_due_one_shot_fires_once_and_is_kept_as_a_record(api, r, worker):
    c = circle()
    bob = polling_peer(api, c)
    doc = create(api, to_peer="bob", circle=c, fire_at="2020-01-01T00:00:00Z", text="wake up")
    sid = doc["schedule_id"]
    fired = wait_fired(api, sid)
    assert fired["state"] == "fired"
    assert fired["fire_count"] == 1
    assert fired["last_due_at"] == "2020-01-01T00:00:00+00:00"
    outcome = fired["last_outcome"]
    assert outcome["status"] == "queued" and outcome["error"] is None
    assert outcome["delivery_id"].startswith("notif-delivery-")
    # The same due time again, however it comes (a second beat, a redelivered task): stale.
    due = parse_ms(doc["fire_at"])
    assert schedule_tasks.fire([(sid, due), (sid, due)]) == {"fired": 0, "failed": 0, "stale": 2}
    tick.tick()
    assert get(api, sid)["fire_count"] == 1
    queued = deliveries.drain(r, bob, 50)
    assert [(d["kind"], d["text"], d["from_peer"]) for d in queued] == [
        ("notify", "wake up", "sched-sender")
    ]
    assert queued[0]["delivery_id"] == outcome["delivery_id"]
    # Not pending any more: not listed, nothing to cancel; still readable as the record.
    listed = api.get("/schedules", params={"from_peer": "sched-sender"}).json()["schedules"]
    assert sid not in [s["schedule_id"] for s in listed]
    assert api.delete(f"/schedules/{sid}").status_code == 404
    assert get(api, sid)["fire_count"] == 1
    assert 0 < r.pttl(f"schedule:{sid}") <= schedules.FIRED_KEPT_MS
    trace = api.get(f"/traces/{sid}").json()
    assert [(s["stage"], s["status"]) for s in trace["stages"]] == [
        ("dispatched", "ok"),
        ("delivered", "ok"),
    ]
    assert trace["stages"][1]["detail"]["delivery_id"] == outcome["delivery_id"]
    fired_events = [
        e
        for e in api.get("/events").json()
        if e["type"] == "schedule_fired" and e.get("schedule_id") == sid
    ]
    assert len(fired_events) == 1
    assert fired_events[0]["status"] == "queued" and fired_events[0]["to_peer"] == "bob"


def test_recurring_fires_once_per_due_time_and_no_backfill_after_downtime(api, r, worker):
    c = circle()
    bob = polling_peer(api, c)
    doc = create(api, to_peer="bob", circle=c, cron="* * * * *", text="tick")
    sid = doc["schedule_id"]
    first = parse_ms(doc["fire_at"])
    clock.advance((first - clock.now_ms()) / 1000 + 0.2)
    fired = wait_fired(api, sid, 1)
    assert fired["last_due_at"] == iso(first)
    assert fired["fire_at"] == iso(first + 60_000)
    assert fired["state"] == "pending"
    clock.advance(60)
    fired = wait_fired(api, sid, 2)
    assert fired["last_due_at"] == iso(first + 60_000)
    # Down for ten minutes: the overdue due time fires once, then the next one after now.
    clock.advance(10 * 60)
    fired = wait_fired(api, sid, 3)
    assert fired["last_due_at"] == iso(first + 2 * 60_000)
    assert parse_ms(fired["fire_at"]) == (clock.now_ms() // 60_000 + 1) * 60_000
    tick.tick()
    assert get(api, sid)["fire_count"] == 3
    assert [d["text"] for d in deliveries.drain(r, bob, 50)] == ["tick"] * 3
    listed = api.get("/schedules", params={"from_peer": "sched-sender"}).json()["schedules"]
    assert sid in [s["schedule_id"] for s in listed]
    assert api.delete(f"/schedules/{sid}").json() == {"ok": True}


def test_scheduled_ask_is_opened_and_queued(api, r, worker):
    c = circle()
    bob = polling_peer(api, c)
    doc = create(api, to_peer="bob", circle=c, kind="ask", fire_at=iso(clock.now_ms()))
    fired = wait_fired(api, doc["schedule_id"])
    outcome = fired["last_outcome"]
    assert outcome["status"] == "queued"
    cid = outcome["correlation_id"]
    assert cid.startswith("ask-")
    pending = api.get("/asks/pending", params={"peer_id": bob}).json()["asks"]
    assert cid in [a["correlation_id"] for a in pending]
    queued = deliveries.drain(r, bob, 50)
    assert [(d["kind"], d["correlation_id"]) for d in queued] == [("ask", cid)]


def test_live_peer_gets_the_notify_on_its_socket(api, shim_url, worker):
    c = circle()
    carol = MeshPeer(shim_url, "carol", c)
    try:
        doc = create(api, to_peer="carol", circle=c, text="ping", fire_at=iso(clock.now_ms()))
        fired = wait_fired(api, doc["schedule_id"])
        assert fired["last_outcome"]["status"] == "sent"
        frame = carol.expect("notify")
        assert (frame["from_peer"], frame["text"]) == ("sched-sender", "ping")
        assert frame["delivery_id"] == fired["last_outcome"]["delivery_id"]
    finally:
        carol.close()


def test_undeliverable_fire_is_recorded_as_failed_and_not_retried(api, worker):
    doc = create(api, to_peer=f"ghost-{secrets.token_hex(3)}", fire_at=iso(clock.now_ms()))
    sid = doc["schedule_id"]
    fired = wait_fired(api, sid)
    assert fired["state"] == "fired" and fired["fire_count"] == 1
    outcome = fired["last_outcome"]
    assert outcome["status"] == "failed"
    assert outcome["error"] == {"code": 404, "detail": f"Peer not found: {doc['to_peer']}"}
    stages = api.get(f"/traces/{sid}").json()["stages"]
    assert [(s["stage"], s["status"]) for s in stages] == [
        ("dispatched", "ok"),
        ("delivery_failed", "fail"),
    ]


def test_deleted_schedule_does_not_fire(api, r, worker):
    c = circle()
    bob = polling_peer(api, c)
    doc = create(api, to_peer="bob", circle=c, fire_at=iso(clock.now_ms() + 60_000))
    assert api.delete(f"/schedules/{doc['schedule_id']}").json() == {"ok": True}
    clock.advance(61)
    due = parse_ms(doc["fire_at"])
    assert schedule_tasks.fire([(doc["schedule_id"], due)])["stale"] == 1
    tick.tick()
    assert deliveries.drain(r, bob, 50) == []
