"""A template's timezone, through the API: exact `next_due_at` values in a zone half an hour off
UTC (Asia/Kolkata, +05:30) and across DST changes (Europe/Paris, America/New_York), and the
due time of each child the scheduler makes when the clock is driven to it.

The shared clock is moved to fixed instants of 2025 (backwards: nothing of other tests is due
then), so every expected value is a literal. A template's due time is picked up by the
scheduler tick's own step (`tasks.tick.materialize`) for this template only. Its children run
on a machine no worker serves, so they wait queued; every template and child is cancelled
after the test.
"""

from __future__ import annotations

import secrets

import pytest

from dispatchyard.state import clock, templates
from tasks import tick
from tests.support import records
from tests.support.http import Api

NOWHERE = f"tz-nowhere-{secrets.token_hex(3)}"


def at(instant: str) -> None:
    """Move the shared clock (the in-process shim's too) to `instant`."""
    clock.advance((clock.parse_ms(instant) - clock.now_ms()) / 1000)


@pytest.fixture
def made(api):
    """Ids of the templates and children a test made; all cancelled after it."""
    ids: list[str] = []
    yield ids
    for record_id in reversed(ids):
        api.post(f"/jobs/{record_id}/cancel", json={})


def template(api: Api, made: list[str], cron: str, timezone: str, tmp_path) -> dict:
    resp = api.post(
        "/jobs",
        json={
            "title": f"tz {cron} {timezone}",
            "prompt": "p",
            "path": str(tmp_path),
            "backend": "claude-code",
            "machine": NOWHERE,
            "cron": cron,
            "timezone": timezone,
            # Its children wait queued: with `allow` a running child does not skip the next.
            "overlap": "allow",
        },
    )
    assert resp.status_code == 200, resp.text
    cal = resp.json()["calendar"]
    made.append(cal["calendar_id"])
    assert cal["timezone"] == timezone and cal["cron"] == cron
    return cal


def fire_next(api: Api, r, made: list[str], cal_id: str) -> tuple[str, str]:
    """Drive the clock to the template's next due time and let the tick's step make its child:
    (the child's scheduled due time, the template's next_due_at after it)."""
    due_at = records.job(api, cal_id)["next_due_at"]
    due_ms = clock.parse_ms(due_at)
    at(clock.iso(due_ms - 1000))
    assert cal_id not in dict(templates.due(r, clock.now_ms())), "due a second early"
    at(clock.iso(due_ms + 500))
    assert (cal_id, due_ms) in templates.due(r, clock.now_ms())
    assert tick.materialize([(cal_id, due_ms)])["materialized"] == 1
    after = records.job(api, cal_id)
    child = records.job(api, after["last_occurrence_work_id"])
    made.append(child["job_id"])
    scheduled = child["provenance"]["calendar"]["scheduled_due_at"]
    assert child["execution"]["schedule"]["due_at"] == scheduled == due_at
    assert child["provenance"]["calendar"]["timezone"] == after["timezone"]
    return scheduled, after["next_due_at"]


def test_half_hour_zone_kolkata(api, r, made, tmp_path):
    at("2025-01-15T00:10:00+00:00")  # 05:40 in Kolkata
    hourly = template(api, made, "@hourly", "Asia/Kolkata", tmp_path)
    # On the hour in Kolkata is half past in UTC.
    assert hourly["next_due_at"] == "2025-01-15T00:30:00+00:00"
    nine = template(api, made, "0 9 * * *", "Asia/Kolkata", tmp_path)
    assert nine["next_due_at"] == "2025-01-15T03:30:00+00:00"

    fired = fire_next(api, r, made, hourly["calendar_id"])
    assert fired == ("2025-01-15T00:30:00+00:00", "2025-01-15T01:30:00+00:00")
    fired = fire_next(api, r, made, nine["calendar_id"])
    assert fired == ("2025-01-15T03:30:00+00:00", "2025-01-16T03:30:00+00:00")


def test_daily_across_spring_forward_paris(api, r, made, tmp_path):
    at("2025-03-28T12:00:00+00:00")
    nine = template(api, made, "0 9 * * *", "Europe/Paris", tmp_path)
    assert nine["next_due_at"] == "2025-03-29T08:00:00+00:00"  # 09:00 CET (+01:00)
    # 09:00 stays 09:00 on the wall: 23 hours later in UTC, then every 24 again.
    assert fire_next(api, r, made, nine["calendar_id"]) == (
        "2025-03-29T08:00:00+00:00",
        "2025-03-30T07:00:00+00:00",  # 09:00 CEST (+02:00)
    )
    assert fire_next(api, r, made, nine["calendar_id"]) == (
        "2025-03-30T07:00:00+00:00",
        "2025-03-31T07:00:00+00:00",
    )


def test_a_wall_time_in_the_spring_gap_is_skipped_paris(api, r, made, tmp_path):
    # 2025-03-30 02:30 does not exist in Paris (02:00 CET -> 03:00 CEST): no fire that day.
    at("2025-03-29T12:00:00+00:00")
    gap = template(api, made, "30 2 * * *", "Europe/Paris", tmp_path)
    assert gap["next_due_at"] == "2025-03-31T00:30:00+00:00"
    assert fire_next(api, r, made, gap["calendar_id"]) == (
        "2025-03-31T00:30:00+00:00",
        "2025-04-01T00:30:00+00:00",
    )


def test_a_repeated_wall_time_fires_once_paris(api, r, made, tmp_path):
    # 2025-10-26 02:30 happens twice in Paris (03:00 CEST -> 02:00 CET): it fires at the first.
    at("2025-10-25T12:00:00+00:00")
    twice = template(api, made, "30 2 * * *", "Europe/Paris", tmp_path)
    assert twice["next_due_at"] == "2025-10-26T00:30:00+00:00"  # 02:30 CEST
    # Not 01:30 UTC (02:30 CET, the second pass) but the next day.
    assert fire_next(api, r, made, twice["calendar_id"]) == (
        "2025-10-26T00:30:00+00:00",
        "2025-10-27T01:30:00+00:00",  # 02:30 CET (+01:00)
    )


def test_daily_across_spring_forward_new_york(api, r, made, tmp_path):
    at("2025-03-08T12:00:00+00:00")
    nine = template(api, made, "0 9 * * *", "America/New_York", tmp_path)
    assert nine["next_due_at"] == "2025-03-08T14:00:00+00:00"  # 09:00 EST (-05:00)
    assert fire_next(api, r, made, nine["calendar_id"]) == (
        "2025-03-08T14:00:00+00:00",
        "2025-03-09T13:00:00+00:00",  # 09:00 EDT (-04:00)
    )
