"""The state machines of state/models.py, as data: closed, reachable, final where they say so,
and `may_move` answering from the table. No Redis (the Lua encoding of the same tables is
checked against Redis in tests/integration/test_state_moves.py)."""

from __future__ import annotations

from collections import deque

import pytest

from dispatchyard.state.models import (
    HOST_INITIAL,
    HOST_STATUSES,
    HOST_TRANSITIONS,
    JOB_TRANSITIONS,
    MUTATION_TRANSITIONS,
    PEER_INITIAL,
    PEER_TRANSITIONS,
    SESSION_TERMINAL,
    SESSION_TRANSITIONS,
    TEMPLATE_TRANSITIONS,
    HostState,
    MutationState,
    PeerState,
    SessionState,
    may_move,
)

# (name, table, initial state, states that must have no exits)
MACHINES = [
    ("session", SESSION_TRANSITIONS, "queued", set(SESSION_TERMINAL)),
    ("mutation", MUTATION_TRANSITIONS, "pending", {"applied", "failed", "cancelled"}),
    ("job", JOB_TRANSITIONS, "queued", {"completed", "cancelled", "expired"}),
    ("template", TEMPLATE_TRANSITIONS, "active", {"cancelled"}),
    ("host", HOST_TRANSITIONS, HOST_INITIAL, set()),
    ("peer", PEER_TRANSITIONS, PEER_INITIAL, set()),
]
IDS = [m[0] for m in MACHINES]


def reachable(table, start) -> set:
    seen, todo = {start}, deque([start])
    while todo:
        for nxt in table[todo.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize(("name", "table", "initial", "final"), MACHINES, ids=IDS)
def test_every_target_is_a_state_of_the_machine(name, table, initial, final):
    for state, targets in table.items():
        assert set(targets) <= set(table), f"{name}: {state} -> {set(targets) - set(table)}"


@pytest.mark.parametrize(("name", "table", "initial", "final"), MACHINES, ids=IDS)
def test_final_states_have_no_exits(name, table, initial, final):
    for state in final:
        assert not table[state], f"{name}: {state} is final but may move to {table[state]}"


@pytest.mark.parametrize(("name", "table", "initial", "final"), MACHINES, ids=IDS)
def test_every_state_is_reachable_from_the_initial_one(name, table, initial, final):
    assert reachable(table, initial) == set(table), name


@pytest.mark.parametrize(("name", "table", "initial", "final"), MACHINES, ids=IDS)
def test_may_move_is_the_table(name, table, initial, final):
    for current, targets in table.items():
        for target in table:
            assert may_move(table, current, target) == (target in targets), (name, current)
    assert not may_move(table, "no-such-state", initial)


def sources(table, target) -> set:
    return {s for s, targets in table.items() if may_move(table, s, target)}


def test_enums_and_tables_name_the_same_states():
    assert set(SESSION_TRANSITIONS) == set(SessionState)
    assert set(MUTATION_TRANSITIONS) == set(MutationState)
    assert set(HOST_TRANSITIONS) == set(HostState)
    assert set(PEER_TRANSITIONS) == set(PeerState)
    # The platform's verdict on a host (`hostStatus`) is another vocabulary than its lifecycle.
    assert not set(HOST_STATUSES) & set(HostState)


def test_host_moves():
    a, o, d = HostState.ACTIVE, HostState.OFFLINE, HostState.DEREGISTERED
    # Heartbeat and registration: from active or offline; only registration brings a
    # deregistered host back (heartbeat refuses it before any move).
    assert sources(HOST_TRANSITIONS, a) == {a, d, o}
    # The sweep only takes an active host offline.
    assert sources(HOST_TRANSITIONS, o) == {a}
    # Deregistering twice is refused.
    assert sources(HOST_TRANSITIONS, d) == {a, o}


def test_peer_moves():
    on, busy, off, retired = PeerState.ONLINE, PeerState.BUSY, PeerState.OFFLINE, PeerState.RETIRED
    assert sources(PEER_TRANSITIONS, on) == {busy, off, on}
    assert sources(PEER_TRANSITIONS, off) == {busy, off, on, retired}
    # A retired peer comes back only as offline (a registration whose agent is alive).
    assert PEER_TRANSITIONS[retired] == {off, retired}


def test_queued_is_entered_again_only_by_a_requeue_and_pending_never():
    # A claimed session goes back to the queue (nack, deregistration, the offline sweep).
    assert sources(SESSION_TRANSITIONS, SessionState.QUEUED) == {SessionState.CLAIMED}
    assert sources(MUTATION_TRANSITIONS, MutationState.PENDING) == set()
