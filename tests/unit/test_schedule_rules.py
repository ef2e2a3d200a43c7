"""The pure rules of scheduled messages (state/schedule_rules.py): a schedule from a create
request, claiming a due time (once), and recording a fire's outcome."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from dispatchyard.state import schedule_rules as rules
from dispatchyard.state.clock import iso, parse_ms

# 2026-05-14 08:59:30 UTC, a Thursday.
NOW = int(datetime(2026, 5, 14, 8, 59, 30, tzinfo=UTC).timestamp() * 1000)
MINUTE = 60_000


def request(**fields):
    return {"from_peer": "alice", "to_peer": "bob", "text": "check in", **fields}


def one_shot(at_ms: int = NOW + MINUTE):
    return rules.new_doc(request(fire_at=iso(at_ms)), NOW)


def every_minute(**fields):
    return rules.new_doc(request(cron="* * * * *", **fields), NOW)


def test_one_shot_shape():
    doc = rules.new_doc(request(fire_at="2026-05-14T11:00:00+02:00", circle="dev"), NOW)
    assert re.fullmatch(r"sched-[0-9a-f]{8}", doc["schedule_id"])
    assert doc["fire_at"] == "2026-05-14T09:00:00+00:00"
    assert doc["created_at"] == iso(NOW)
    expected = {
        "from_peer": "alice",
        "to_peer": "bob",
        "text": "check in",
        "kind": "notify",
        "circle": "dev",
        "cron": None,
        "timezone": "UTC",
        "state": "pending",
        "fire_count": 0,
        "last_fired_at": None,
        "last_due_at": None,
        "last_outcome": None,
    }
    assert expected.items() <= doc.items()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2026-05-14T09:00:00", "2026-05-14T09:00:00+00:00"),  # naive is UTC
        ("2026-05-14T09:00:00Z", "2026-05-14T09:00:00+00:00"),
        ("2026-05-14T04:00:00-05:00", "2026-05-14T09:00:00+00:00"),
        ("2026-05-14T09:00:00.123+00:00", "2026-05-14T09:00:00.123000+00:00"),
        ("2020-01-01T00:00:00Z", "2020-01-01T00:00:00+00:00"),  # past: fires on the next tick
    ],
)
def test_fire_at_is_stored_in_utc(given, expected):
    assert rules.new_doc(request(fire_at=given), NOW)["fire_at"] == expected


def test_fire_at_keeps_milliseconds_exactly():
    assert rules.parse_fire_at("2026-05-14T09:00:00.123Z") % 1000 == 123


def test_a_naive_fire_at_is_utc_whatever_the_timezone():
    doc = rules.new_doc(request(fire_at="2026-05-14T09:00:00", timezone="Europe/Paris"), NOW)
    assert doc["fire_at"] == "2026-05-14T09:00:00+00:00"
    assert doc["timezone"] == "Europe/Paris"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "provide exactly one of fire_at or cron"),
        ({"fire_at": "2026-05-14T09:00:00", "cron": "* * * * *"}, "provide exactly one"),
        ({"fire_at": "tomorrow"}, "fire_at must be ISO-8601: Invalid isoformat string"),
        ({"fire_at": "2026-13-01T00:00:00"}, "fire_at must be ISO-8601: month must be in"),
        ({"fire_at": "9999-12-31T23:59:59-05:00"}, "fire_at is out of range"),
        ({"fire_at": "0001-01-01T00:00:00+05:00"}, "fire_at is out of range"),
        ({"cron": "61 * * * *"}, "minute field: 61 out of range 0-59"),
        ({"cron": "* * * *"}, "cron expression needs 5 fields"),
        ({"cron": "0 0 31 2 *"}, "never fires"),
        ({"cron": "@sometimes"}, "unknown cron alias"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "unknown timezone: Mars/Olympus"),
        ({"fire_at": "2026-05-14T09:00:00", "timezone": "Nope"}, "unknown timezone: Nope"),
        ({"fire_at": "2026-05-14T09:00:00", "kind": "email"}, "kind must be one of"),
    ],
)
def test_refused_requests(fields, message):
    with pytest.raises(rules.ScheduleError) as e:
        rules.new_doc(request(**fields), NOW)
    assert message in str(e.value)


def test_unknown_kind_message_is_repowires():
    with pytest.raises(rules.ScheduleError) as e:
        rules.new_doc(request(fire_at="2026-05-14T09:00:00", kind="email"), NOW)
    assert str(e.value) == "kind must be one of ['ask', 'notify']; got 'email'"


def test_cron_schedule_waits_for_its_next_time():
    doc = rules.new_doc(request(cron="  */15   * * * * ", kind="ask"), NOW)
    assert doc["cron"] == "*/15 * * * *"  # whitespace collapsed, as repowire
    assert doc["fire_at"] == "2026-05-14T09:00:00+00:00"
    assert doc["kind"] == "ask"


def test_cron_uses_the_timezone():
    # 09:00 in Paris is 07:00 UTC in May (summer time); the next one is tomorrow's.
    doc = rules.new_doc(request(cron="0 9 * * *", timezone="Europe/Paris"), NOW)
    assert doc["fire_at"] == "2026-05-15T07:00:00+00:00"
    doc = rules.new_doc(request(cron="@daily"), NOW)
    assert doc["cron"] == "@daily"
    assert doc["fire_at"] == "2026-05-15T00:00:00+00:00"


def test_one_shot_claims_once():
    doc = one_shot()
    due = parse_ms(doc["fire_at"])
    assert rules.due_ms(doc) == due
    assert rules.claim(doc, due, due + 250)
    assert doc["state"] == "fired"
    assert doc["fire_count"] == 1
    assert doc["last_fired_at"] == iso(due + 250)
    assert doc["last_due_at"] == iso(due)
    assert doc["last_outcome"] == {"status": "firing", "due_at": iso(due)}
    assert rules.due_ms(doc) is None
    before = dict(doc)
    assert not rules.claim(doc, due, due + 500)  # a second beat, a redelivered task
    assert doc == before


def test_claim_refuses_another_due_time_or_too_early():
    doc = one_shot()
    due = parse_ms(doc["fire_at"])
    before = dict(doc)
    assert not rules.claim(doc, due - MINUTE, due)
    assert not rules.claim(doc, due, due - 1)
    assert doc == before


def test_recurring_moves_to_its_next_time():
    doc = every_minute()
    first = parse_ms(doc["fire_at"])
    assert rules.claim(doc, first, first + 100)
    assert doc["state"] == "pending"
    assert parse_ms(doc["fire_at"]) == first + MINUTE
    assert not rules.claim(doc, first, first + 200)
    assert rules.claim(doc, first + MINUTE, first + MINUTE + 100)
    assert doc["fire_count"] == 2


def test_recurring_after_downtime_fires_once_then_waits_for_the_next_time_from_now():
    doc = every_minute()
    first = parse_ms(doc["fire_at"])
    late = first + 10 * MINUTE + 5_000  # ten due times missed
    assert rules.claim(doc, first, late)
    assert doc["fire_count"] == 1
    assert doc["last_due_at"] == iso(first)
    assert parse_ms(doc["fire_at"]) == first + 11 * MINUTE  # no backfill
    assert not rules.claim(doc, first + MINUTE, late)


def test_outcome_shapes():
    due = NOW
    sent = rules.outcome(due, status="sent", delivery_id="notif-delivery-0123abcd")
    assert sent == {
        "status": "sent",
        "due_at": iso(due),
        "delivery_id": "notif-delivery-0123abcd",
        "error": None,
    }
    queued = rules.outcome(due, status="queued", correlation_id="ask-0123abcd")
    assert queued["correlation_id"] == "ask-0123abcd"
    assert "delivery_id" not in queued
    failed = rules.outcome(due, status="failed", error={"code": 404, "detail": "Peer not found"})
    assert failed["error"] == {"code": 404, "detail": "Peer not found"}


def test_outcome_is_recorded_on_its_own_fire_only():
    doc = every_minute()
    first = parse_ms(doc["fire_at"])
    rules.claim(doc, first, first)
    result = rules.outcome(first, status="queued", delivery_id="notif-delivery-1")
    assert rules.record_outcome(doc, 1, result, first + 10)
    assert doc["last_outcome"] == result
    rules.claim(doc, first + MINUTE, first + MINUTE)
    # The first fire's outcome arriving after the second fire was claimed changes nothing.
    assert not rules.record_outcome(doc, 1, result, first + MINUTE + 10)
    assert doc["last_outcome"]["status"] == "firing"
