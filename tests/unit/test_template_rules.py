"""Recurring templates as pure rules: due times, overlap policies, pause/resume/cancel."""

from __future__ import annotations

import pytest

from dispatchyard.state import template_rules
from dispatchyard.state.clock import iso, parse_ms
from dispatchyard.state.errors import Conflict
from dispatchyard.state.models import TEMPLATE_TRANSITIONS, TemplateState

NOW = 1_800_000_000_000  # 2027-01-15T08:00:00Z


def template(overlap: str = "skip", cron: str = "*/5 * * * *") -> dict:
    return template_rules.new_doc({"title": "t", "cron": cron, "overlap": overlap}, NOW)


def due_of(doc: dict) -> int:
    due = parse_ms(doc["next_due_at"])
    assert due is not None
    return due


def test_next_due_is_the_first_cron_time_after_now():
    doc = template()
    assert due_of(doc) == NOW + 5 * 60_000 - NOW % (5 * 60_000)


def test_a_due_time_makes_one_child_and_advances_the_template():
    doc = template()
    due = due_of(doc)
    outcome, child = template_rules.occurrence(doc, due, due_ms=due, previous_running=False)
    assert outcome == "created" and child is not None
    assert child["source_kind"] == "calendar" and child["source_id"] == doc["calendar_id"]
    assert child["request"]["execution"]["schedule"]["due_at"] == iso(due)
    assert doc["last_occurrence_work_id"] == child["job_id"]
    assert due_of(doc) == due + 5 * 60_000
    # The same due time again is stale: the template waits for the next one.
    assert template_rules.occurrence(doc, due, due_ms=due, previous_running=False) == (
        "stale",
        None,
    )


def test_no_backfill_after_downtime():
    doc = template()
    due = due_of(doc)
    late = due + 60 * 60_000  # an hour of downtime
    outcome, _ = template_rules.occurrence(doc, late, due_ms=due, previous_running=False)
    assert outcome == "created"
    assert due_of(doc) > late


@pytest.mark.parametrize(
    ("overlap", "expected"), [("skip", "skipped"), ("buffer_one", "buffered"), ("allow", "created")]
)
def test_overlap_policy_when_the_previous_child_still_runs(overlap, expected):
    doc = template(overlap)
    due = due_of(doc)
    outcome, child = template_rules.occurrence(doc, due, due_ms=due, previous_running=True)
    assert outcome == expected
    if expected == "skipped":
        assert child is None and doc["skipped_count"] == 1
        assert doc["last_skipped_due_at"] == iso(due)
    if expected == "buffered":
        assert child is not None and doc["buffered_work_id"] == child["job_id"]
        # A second due time while one is buffered is skipped: buffer one, not many.
        again = due_of(doc)
        outcome, _ = template_rules.occurrence(doc, again, due_ms=again, previous_running=True)
        assert outcome == "skipped"
        assert template_rules.release(doc, child["job_id"]) is True
        assert doc["buffered_work_id"] is None
        assert template_rules.release(doc, child["job_id"]) is False


def test_pause_resume_cancel_follow_the_table():
    doc = template()
    assert template_rules.change_state(doc, NOW, TemplateState.PAUSED, None) is True
    assert template_rules.change_state(doc, NOW, TemplateState.PAUSED, None) is False
    resumed_at = NOW + 3_600_000
    assert template_rules.change_state(doc, resumed_at, TemplateState.ACTIVE, None) is True
    assert due_of(doc) > resumed_at  # nothing fires for the paused hour
    template_rules.change_state(doc, NOW, TemplateState.CANCELLED, "done")
    assert doc["provenance"]["cancel_reason"] == "done"
    with pytest.raises(Conflict):
        template_rules.change_state(doc, NOW, TemplateState.ACTIVE, None)
    assert TEMPLATE_TRANSITIONS[TemplateState.CANCELLED] == frozenset()


def test_bindings_and_skips_keep_a_bounded_history():
    doc = template()
    for i in range(15):
        template_rules.record_binding(doc, {"runtime_session_id": f"s{i}"})
        template_rules.record_skip(doc, iso(NOW + i))
    assert doc["provenance"]["runtime_binding"] == {"runtime_session_id": "s14"}
    assert len(doc["provenance"]["runtime_binding_history"]) == template_rules.BINDINGS_KEPT
    assert doc["skipped_count"] == 15
