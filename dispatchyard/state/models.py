"""Vocabularies and state machines, as data.

Every machine is a StrEnum of its states and one table `{from_state: {allowed targets}}`. Lua
scripts get the same table at load time (`--! machines session` gives `SESSION`, see
`LUA_MACHINES` and scripts/__init__.py) and check a move with `may_move` in the same atomic step
as the write; Python rules check it with `may_move` below.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from enum import StrEnum
from typing import Any

# Org and project slugs: lowercase, digits and dashes, as they appear in URLs.
SLUG = r"[a-z0-9][a-z0-9-]{0,62}"
SLUG_PATTERN = f"^{SLUG}$"

ROLES = ("auditor", "member", "admin", "owner")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}

SCOPES = (
    "worker:register",
    "worker:poll",
    "worker:heartbeat",
    "worker:session",
    "org_keys:write",
    "*",
)
RUNTIME_SCOPES = ["worker:poll", "worker:heartbeat", "worker:session"]

WORK_TYPES = (
    "research",
    "backlog-creation",
    "backlog-groomer",
    "development",
    "inflight",
    "qa",
    "acceptance",
    "refinement",
    "refinement-coordination",
    "merge",
    "security",
    "improvement-loop",
    "outcome-auditor",
    "ga-readiness",
    "documentation-steward",
    "coordination",
    "inflight-coordination",
)


class SessionState(StrEnum):
    """A platform session's status (its record's `status`)."""

    QUEUED = "queued"
    CLAIMED = "claimed"
    RUNNING = "running"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"


_S = SessionState
# Sessions: claimed -> running -> finalizing -> completed | failed | stopped, with the shortcuts
# the real runner takes (RenseiAI/donmai never sends `finalizing`: it reports `completed` straight
# from `running`, and from `claimed` when its eager `running` post was lost), and a claimed or
# running session may fail or stop (an agent that crashes mid-run never reaches finalizing). A
# claimed session goes back to `queued` when its host nacks it, is deregistered or goes silent.
# Staying in a state is a repeated report (idempotent). See docs/decisions.md, "The real client
# wins".
SESSION_TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    _S.QUEUED: frozenset({_S.CLAIMED}),
    _S.CLAIMED: frozenset(
        {_S.QUEUED, _S.RUNNING, _S.FINALIZING, _S.COMPLETED, _S.FAILED, _S.STOPPED}
    ),
    _S.RUNNING: frozenset({_S.FINALIZING, _S.COMPLETED, _S.FAILED, _S.STOPPED}),
    _S.FINALIZING: frozenset({_S.COMPLETED, _S.FAILED, _S.STOPPED}),
    _S.COMPLETED: frozenset(),
    _S.FAILED: frozenset(),
    _S.STOPPED: frozenset(),
}
SESSION_TERMINAL = frozenset(s for s, t in SESSION_TRANSITIONS.items() if not t)
SESSION_ACTIVE = frozenset({_S.CLAIMED, _S.RUNNING, _S.FINALIZING})
SESSION_STATUSES = tuple(SessionState)


class MutationState(StrEnum):
    """A daemon config mutation's status (docs/api.md)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    APPLIED = "applied"
    FAILED = "failed"
    CANCELLED = "cancelled"


_M = MutationState
# Daemon config mutations (delivered on heartbeats). `delivered -> delivered` is a redelivery.
MUTATION_TRANSITIONS: dict[MutationState, frozenset[MutationState]] = {
    _M.PENDING: frozenset({_M.DELIVERED, _M.CANCELLED}),
    _M.DELIVERED: frozenset({_M.DELIVERED, _M.APPLIED, _M.FAILED}),
    _M.APPLIED: frozenset(),
    _M.FAILED: frozenset(),
    _M.CANCELLED: frozenset(),
}
MUTATION_STATUSES = tuple(MutationState)
MUTATION_OPS = (
    "project.add",
    "project.remove",
    "pool.deleted",
    "modelAccess.set",
    "modelAccess.clear",
)
MODEL_ACCESS_WORKLOADS = (*WORK_TYPES, "code-survival-scan", "kg-extraction", "interview")

# What the platform tells a host about itself (its record's `hostStatus`, the heartbeat's
# `hostStatus.status`); anything but "ok" is offered no work. Not the host's lifecycle: that is
# HostState, in the record's `status`. Only the statuses something sets are listed: the wire
# vocabulary also has `pool_draining` and `pool_disabled`, but those describe a platform-side
# capacity pool, which dispatchyard does not keep, and neither a mutation op nor a heartbeat
# field of the real client (RenseiAI/donmai) reports them (docs/decisions.md).
HOST_STATUSES = ("ok", "pool_deleted", "unauthorized")


class HostState(StrEnum):
    """A daemon host's lifecycle (its record's `status`)."""

    ACTIVE = "active"  # registered and heartbeating
    OFFLINE = "offline"  # silent past the offline window (the sweep)
    DEREGISTERED = "deregistered"  # every route but register treats it as unknown


# Registering starts a host `active`. A heartbeat or a registration again keeps it active, and
# brings an offline one back. Registering again with the same machineId also brings a
# deregistered host back, under the same id: the machine index outlives deregistration, and
# registration is the only move out of `deregistered` (heartbeat and poll refuse such a host
# before any move).
HOST_TRANSITIONS: dict[HostState, frozenset[HostState]] = {
    HostState.ACTIVE: frozenset({HostState.ACTIVE, HostState.OFFLINE, HostState.DEREGISTERED}),
    HostState.OFFLINE: frozenset({HostState.ACTIVE, HostState.DEREGISTERED}),
    HostState.DEREGISTERED: frozenset({HostState.ACTIVE}),
}
HOST_INITIAL = HostState.ACTIVE
# What a host reports about itself on heartbeat (its record's `reportedStatus`). Not a
# lifecycle state: the host list shows an active host that reports `draining` as draining.
HOST_REPORTED_STATUSES = ("idle", "busy", "draining")


class PeerState(StrEnum):
    """A peer's presence (its record's `status`), which its live transport decides: a
    WebSocket connecting makes it online, its `status` frames move it between online and busy,
    and its end (or its shim process dying) makes it offline. Registering alone does not make a
    peer online. `retired` is an offline that refuses later registrations of the same identity
    unless its agent process is still alive."""

    ONLINE = "online"
    BUSY = "busy"
    OFFLINE = "offline"
    RETIRED = "retired"


_P = PeerState
# Staying in a state is a repeated report (it refreshes `last_seen`). A retired peer leaves only
# by a registration whose agent process is alive (to offline; its socket then brings it online).
PEER_TRANSITIONS: dict[PeerState, frozenset[PeerState]] = {
    _P.ONLINE: frozenset({_P.ONLINE, _P.BUSY, _P.OFFLINE, _P.RETIRED}),
    _P.BUSY: frozenset({_P.ONLINE, _P.BUSY, _P.OFFLINE, _P.RETIRED}),
    _P.OFFLINE: frozenset({_P.ONLINE, _P.OFFLINE, _P.RETIRED}),
    _P.RETIRED: frozenset({_P.OFFLINE, _P.RETIRED}),
}
PEER_INITIAL = PeerState.OFFLINE
PEER_CONNECTED = frozenset({PeerState.ONLINE, PeerState.BUSY})


class JobState(StrEnum):
    """A durable job's state (the /jobs API, docs/api.md)."""

    QUEUED = "queued"
    DISPATCHING = "dispatching"
    DELIVERED = "delivered"
    RUNNING = "running"
    AWAITING_INPUT = "awaiting_input"
    BLOCKED = "blocked"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    UNAVAILABLE = "unavailable"


_J = JobState
JOB_ACTIVE = (_J.QUEUED, _J.DISPATCHING, _J.DELIVERED, _J.RUNNING, _J.AWAITING_INPUT, _J.BLOCKED)
JOB_TERMINAL = (_J.COMPLETED, _J.FAILED, _J.CANCELLED, _J.EXPIRED, _J.UNAVAILABLE)
JOB_STATES = JOB_ACTIVE + JOB_TERMINAL
# Every move a job can make, whoever makes it. Staying in the same state is not a move (a
# progress report, or the same terminal state reported again, which is idempotent).
# - An active job may be reported in any state but `dispatching` by the peer or executor that
#   works it (PATCH), and ended by the runner and the sweeps (unavailable, expired, ...).
# - `dispatching` starts an attempt: from `queued` (its fire), from `failed`/`unavailable`
#   (run, retry) and from `delivered` (retry); nothing else may enter it.
# - completed, cancelled and expired are final.
_REPORTABLE = frozenset(JOB_STATES) - {_J.DISPATCHING}
JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    _J.QUEUED: _REPORTABLE - {_J.QUEUED} | {_J.DISPATCHING},
    _J.DISPATCHING: _REPORTABLE,
    _J.DELIVERED: _REPORTABLE - {_J.DELIVERED} | {_J.DISPATCHING},
    _J.RUNNING: _REPORTABLE - {_J.RUNNING},
    _J.AWAITING_INPUT: _REPORTABLE - {_J.AWAITING_INPUT},
    _J.BLOCKED: _REPORTABLE - {_J.BLOCKED},
    _J.COMPLETED: frozenset(),
    _J.FAILED: frozenset({_J.DISPATCHING}),
    _J.CANCELLED: frozenset(),
    _J.EXPIRED: frozenset(),
    _J.UNAVAILABLE: frozenset({_J.DISPATCHING}),
}
# Moves only the runner makes (acquire); a PATCH may not.
JOB_RUNNER_ONLY = frozenset({_J.DISPATCHING})
# Which states a fire may start from, by why it fires (a subset of the moves into dispatching).
FIRE_FROM = {
    "due": frozenset({_J.QUEUED}),
    "run": frozenset({_J.QUEUED, _J.FAILED, _J.UNAVAILABLE}),
    "retry": frozenset({_J.FAILED, _J.UNAVAILABLE, _J.DELIVERED}),
}
# Runner-managed jobs need the current attempt id to reach these.
ATTEMPT_CHECKED = frozenset({_J.COMPLETED, _J.FAILED, _J.CANCELLED})


class TemplateState(StrEnum):
    """A recurring template's state."""

    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"


TEMPLATE_STATES = tuple(TemplateState)
TEMPLATE_TRANSITIONS: dict[TemplateState, frozenset[TemplateState]] = {
    TemplateState.ACTIVE: frozenset({TemplateState.PAUSED, TemplateState.CANCELLED}),
    TemplateState.PAUSED: frozenset({TemplateState.ACTIVE, TemplateState.CANCELLED}),
    TemplateState.CANCELLED: frozenset(),
}
OVERLAP_POLICIES = ("skip", "buffer_one", "allow")
# repowire's agent types: accepted at create for a job a peer runs; a per_fire job's backend
# needs a configured command (422 at create otherwise; a fire on a worker configured without it
# ends `unavailable` / `invalid_backend`).
AGENT_BACKENDS = ("claude-code", "opencode", "codex", "gemini", "antigravity", "pi", "mcp-http")
PROCESS_SCOPES = ("per_fire", "persistent")
CONTINUITIES = ("resume", "fresh")


class Final(StrEnum):
    """The kinds of record the retention sweep deletes once they have been final long enough
    (state/retention.py); each has its index `keys.final_at(kind)`, record id -> ms it became
    final: a job in a terminal state, a cancelled template, a session completed, failed or
    stopped, a mutation applied, failed or cancelled, a deregistered host."""

    JOBS = "jobs"
    TEMPLATES = "templates"
    SESSIONS = "sessions"
    MUTATIONS = "mutations"
    HOSTS = "hosts"


def may_move(table: Mapping[Any, AbstractSet[Any]], current: str, target: str) -> bool:
    """Whether the machine `table` lets a record in `current` move to `target`."""
    return target in table.get(current, frozenset())


# The machines Lua scripts check their moves against, by the name a script asks for them
# (`--! machines session` makes the table `SESSION`).
LUA_MACHINES: dict[str, Mapping[Any, AbstractSet[Any]]] = {
    "session": SESSION_TRANSITIONS,
    "mutation": MUTATION_TRANSITIONS,
    "host": HOST_TRANSITIONS,
    "peer": PEER_TRANSITIONS,
}
