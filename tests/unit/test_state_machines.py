"""The state machines of state/models.py, as data: closed, reachable, final where they say so,
and `allowed_from` (what the scripts receive) answering from the table. No Redis."""

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
    PeerState,
    allowed_from,
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
def test_allowed_from_is_the_table_read_backwards(name, table, initial, final):
    for target in table:
        sources = allowed_from(table, target)
        assert sources == sorted(sources), "scripts receive a stable list"
        assert set(sources) == {s for s, targets in table.items() if target in targets}


def test_enums_and_tables_name_the_same_states():
    assert set(HOST_TRANSITIONS) == set(HostState)
    assert set(PEER_TRANSITIONS) == set(PeerState)
    # The platform's verdict on a host (`hostStatus`) is another vocabulary than its lifecycle.
    assert not set(HOST_STATUSES) & set(HostState)


def test_host_moves():
    a, o, d = HostState.ACTIVE, HostState.OFFLINE, HostState.DEREGISTERED
    # Heartbeat and registration: from active or offline; only registration brings a
    # deregistered host back (heartbeat refuses it before any move).
    assert allowed_from(HOST_TRANSITIONS, a) == [a, d, o]
    # The sweep only takes an active host offline.
    assert allowed_from(HOST_TRANSITIONS, o) == [a]
    # Deregistering twice is refused.
    assert allowed_from(HOST_TRANSITIONS, d) == [a, o]


def test_peer_moves():
    on, busy, off, retired = PeerState.ONLINE, PeerState.BUSY, PeerState.OFFLINE, PeerState.RETIRED
    assert allowed_from(PEER_TRANSITIONS, on) == [busy, off, on]
    assert allowed_from(PEER_TRANSITIONS, off) == [busy, off, on, retired]
    # A retired peer comes back only as offline (a registration whose agent is alive).
    assert PEER_TRANSITIONS[retired] == {off, retired}


def test_allowed_from_a_state_nobody_enters_is_empty():
    assert allowed_from(SESSION_TRANSITIONS, "queued") == []
    assert allowed_from(MUTATION_TRANSITIONS, "pending") == []
