"""The job state machine and its transitions, as pure functions: no Redis, no clock."""

from __future__ import annotations

import pytest

from dispatchyard.state import job_rules, job_shape
from dispatchyard.state.clock import iso, parse_ms
from dispatchyard.state.errors import Conflict, Invalid
from dispatchyard.state.models import (
    FIRE_FROM,
    JOB_ACTIVE,
    JOB_RUNNER_ONLY,
    JOB_STATES,
    JOB_TERMINAL,
    JOB_TRANSITIONS,
    JobState,
)

NOW = 1_800_000_000_000
LEASE = 3_000


def queued(**fields) -> dict:
    return job_shape.new_doc({"title": "t", **fields}, NOW, job_id="work-000000000001")


def acquired(doc: dict | None = None, key: str = "due:1") -> dict:
    doc = doc or queued()
    job_rules.acquire(
        doc, NOW, fire_key=key, why="due", lease_ms=LEASE, machine="m", attempt_id="attempt-1"
    )
    return doc


# ---- the table --------------------------------------------------------------------------------


def test_table_covers_every_state_and_names_only_states():
    assert set(JOB_TRANSITIONS) == set(JOB_STATES)
    for targets in JOB_TRANSITIONS.values():
        assert targets <= set(JOB_STATES)


def test_final_states_have_no_exit_and_refiring_is_the_only_exit_of_the_others():
    for state in (JobState.COMPLETED, JobState.CANCELLED, JobState.EXPIRED):
        assert JOB_TRANSITIONS[state] == frozenset()
    for state in (JobState.FAILED, JobState.UNAVAILABLE):
        assert JOB_TRANSITIONS[state] == {JobState.DISPATCHING}


def test_dispatching_is_entered_only_from_fireable_states():
    entering = {s for s, targets in JOB_TRANSITIONS.items() if JobState.DISPATCHING in targets}
    fireable = set().union(*FIRE_FROM.values())
    assert entering == fireable
    assert JobState.DISPATCHING in JOB_RUNNER_ONLY


def test_every_state_is_reachable_from_queued():
    seen, frontier = {JobState.QUEUED}, [JobState.QUEUED]
    while frontier:
        for target in JOB_TRANSITIONS[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(JOB_STATES)


def test_no_state_lists_itself():
    assert all(state not in targets for state, targets in JOB_TRANSITIONS.items())


# ---- transitions ------------------------------------------------------------------------------


def test_acquire_starts_an_attempt_with_a_lease():
    doc = queued()
    write = job_rules.acquire(
        doc, NOW, fire_key="due:1", why="due", lease_ms=LEASE, machine="m", attempt_id="attempt-1"
    )
    assert doc["state"] == "dispatching"
    assert doc["runner"]["current_attempt_id"] == "attempt-1"
    assert doc["runner"]["attempt_count"] == 1
    assert parse_ms(doc["runner"]["lease_until"]) == NOW + LEASE
    assert write.meta["stage"] == "dispatched"


def test_a_fire_key_is_spent_once():
    doc = acquired()
    with pytest.raises(Conflict) as refused:
        job_rules.acquire(
            doc,
            NOW,
            fire_key="due:1",
            why="retry",
            lease_ms=LEASE,
            machine="m",
            attempt_id="attempt-2",
        )
    assert refused.value.message == "duplicate_fire"


@pytest.mark.parametrize("why", ["due", "run", "retry"])
def test_acquire_only_from_the_states_its_reason_allows(why):
    for state in JOB_STATES:
        doc = queued()
        doc["state"] = state
        if state in FIRE_FROM[why]:
            job_rules.acquire(
                doc, NOW, fire_key="k", why=why, lease_ms=LEASE, machine="m", attempt_id="a"
            )
            assert doc["state"] == "dispatching"
        else:
            with pytest.raises(Conflict):
                job_rules.acquire(
                    doc, NOW, fire_key="k", why=why, lease_ms=LEASE, machine="m", attempt_id="a"
                )


def test_acquire_ends_an_expired_job_instead():
    doc = queued(expires_at=iso(NOW - 1))
    write = job_rules.acquire(
        doc, NOW, fire_key="k", why="due", lease_ms=LEASE, machine="m", attempt_id="a"
    )
    assert (doc["state"], doc["state_reason"]) == ("expired", "expires_at_passed")
    assert doc["completed_at"] == iso(NOW)
    assert doc["runner"]["attempts"] == []
    assert write.meta == {"stage": "expired"}


def test_not_due_yet_is_refused():
    doc = queued(request={"execution": {"schedule": {"due_at": iso(NOW + 60_000)}}})
    with pytest.raises(Conflict) as refused:
        job_rules.acquire(
            doc, NOW, fire_key="k", why="due", lease_ms=LEASE, machine="m", attempt_id="a"
        )
    assert refused.value.message == "not_due"


def test_finish_requires_the_current_attempt():
    doc = acquired()
    with pytest.raises(Conflict) as refused:
        job_rules.finish_attempt(
            doc, NOW, attempt_id="attempt-old", state=JobState.COMPLETED, reason="completed"
        )
    assert refused.value.message == "stale_attempt"
    job_rules.finish_attempt(
        doc, NOW, attempt_id="attempt-1", state=JobState.COMPLETED, reason="completed", exit_code=0
    )
    assert doc["state"] == "completed"
    assert doc["runner"]["attempts"][0]["ended_at"] == iso(NOW)
    assert doc["runner"]["lease_until"] is None


def test_lease_lost_decides_cancelled_or_unavailable_from_the_document():
    doc = acquired()
    with pytest.raises(Conflict):
        job_rules.lease_lost(doc, NOW, attempt_id="attempt-1")  # lease still held
    later = NOW + LEASE + 1
    job_rules.lease_lost(doc, later, attempt_id="attempt-1")
    assert (doc["state"], doc["state_reason"]) == ("unavailable", "runner_interrupted")

    cancelling = acquired()
    job_rules.request_cancel(cancelling, NOW, by="peer", reason="operator said so")
    assert cancelling["state"] == "dispatching"  # its supervisor stops it
    job_rules.lease_lost(cancelling, later, attempt_id="attempt-1")
    assert (cancelling["state"], cancelling["state_reason"]) == ("cancelled", "operator said so")


def test_cancel_of_a_queued_job_ends_it_and_is_idempotent_when_terminal():
    doc = queued()
    job_rules.request_cancel(doc, NOW, by="p1", reason="first")
    assert doc["state"] == "cancelled" and doc["cancellation_reason"] == "first"
    job_rules.request_cancel(doc, NOW + 5, by="p2", reason="second")
    assert doc["cancellation_reason"] == "first" and doc["cancel_requested_by_peer_id"] == "p1"


def test_note_waiting_writes_only_a_change():
    doc = queued()
    assert job_rules.note_waiting(doc, NOW, reason="no_worker_for_machine") is not None
    assert job_rules.note_waiting(doc, NOW, reason="no_worker_for_machine") is None


# ---- reports (PATCH) --------------------------------------------------------------------------


def test_a_report_may_not_enter_dispatching():
    doc = queued()
    with pytest.raises(Invalid) as refused:
        job_rules.report(doc, NOW, update={"state": "dispatching"})
    assert refused.value.message == "dispatching is set by the runner, not by PATCH"


@pytest.mark.parametrize("terminal", JOB_TERMINAL)
def test_terminal_is_final_but_repeating_it_is_idempotent(terminal):
    doc = queued()
    doc["state"] = terminal
    job_rules.report(doc, NOW, update={"state": terminal})
    other = next(s for s in JOB_ACTIVE if s != JobState.DISPATCHING)
    with pytest.raises(Invalid) as refused:
        job_rules.report(doc, NOW, update={"state": other})
    assert "terminal state cannot be changed" in refused.value.message


def test_runner_managed_jobs_need_the_current_attempt_to_end():
    doc = acquired()
    with pytest.raises(Invalid) as missing:
        job_rules.report(doc, NOW, update={"state": "completed"})
    assert missing.value.message == "attempt_id is required for runner-managed job updates"
    with pytest.raises(Conflict) as stale:
        job_rules.report(doc, NOW, update={"state": "completed", "attempt_id": "attempt-x"})
    assert stale.value.message == "stale attempt_id"
    job_rules.report(
        doc, NOW, update={"state": "completed", "attempt_id": "attempt-1", "result_summary": "done"}
    )
    assert doc["state"] == "completed" and doc["result_summary"] == "done"
    assert doc["runner"]["attempts"][0]["status"] == "completed"


def test_an_unknown_state_is_refused_with_the_list():
    with pytest.raises(Invalid) as refused:
        job_rules.report(queued(), NOW, update={"state": "exploded"})
    assert "state must be one of" in refused.value.message and "'queued'" in refused.value.message
