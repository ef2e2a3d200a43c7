"""Vocabularies and state machines, as data.

Each machine is a table `{from_state: {allowed targets}}`; scripts receive the slice they need
so the check and the write happen in one atomic step.
"""

from __future__ import annotations

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

# Sessions: claimed -> running -> finalizing -> completed | failed | stopped; a claimed session
# may fail or stop before it runs. A running one may fail or stop too: an agent that crashes
# mid-run never reaches finalizing (our choice; see docs/decisions.md).
SESSION_TRANSITIONS: dict[str, set[str]] = {
    "queued": {"claimed"},
    "claimed": {"running", "failed", "stopped"},
    "running": {"finalizing", "failed", "stopped"},
    "finalizing": {"completed", "failed", "stopped"},
    "completed": set(),
    "failed": set(),
    "stopped": set(),
}
SESSION_TERMINAL = frozenset(s for s, t in SESSION_TRANSITIONS.items() if not t)
SESSION_ACTIVE = frozenset({"claimed", "running", "finalizing"})
SESSION_STATUSES = tuple(SESSION_TRANSITIONS)


# Daemon config mutations (platform.md §4). `delivered -> delivered` is a redelivery.
MUTATION_TRANSITIONS: dict[str, set[str]] = {
    "pending": {"delivered", "cancelled"},
    "delivered": {"delivered", "applied", "failed"},
    "applied": set(),
    "failed": set(),
    "cancelled": set(),
}
MUTATION_STATUSES = tuple(MUTATION_TRANSITIONS)
MUTATION_OPS = ("project.add", "project.remove", "pool.deleted", "modelAccess.set",
                "modelAccess.clear")  # fmt: skip
MODEL_ACCESS_WORKLOADS = (*WORK_TYPES, "code-survival-scan", "kg-extraction", "interview")

# What the platform tells a host about itself; anything but "ok" is offered no work.
HOST_STATUSES = ("ok", "pool_deleted", "pool_draining", "pool_disabled", "unauthorized")


def allowed_from(table: dict[str, set[str]], target: str) -> list[str]:
    """The states from which `target` may be reached."""
    return sorted(s for s, targets in table.items() if target in targets)


# Durable jobs (daemon.md §2). Active states may move to any state (a runner or the job's
# own agent reports progress); `failed`, `unavailable` and `delivered` may be fired again
# (run / retry); the other terminal states are final.
JOB_ACTIVE = ("queued", "dispatching", "delivered", "running", "awaiting_input", "blocked")
JOB_TERMINAL = ("completed", "failed", "cancelled", "expired", "unavailable")
JOB_STATES = JOB_ACTIVE + JOB_TERMINAL
JOB_TRANSITIONS: dict[str, set[str]] = {
    **{state: set(JOB_STATES) for state in JOB_ACTIVE},
    "completed": set(),
    "cancelled": set(),
    "expired": set(),
    "failed": {"dispatching"},
    "unavailable": {"dispatching"},
}
# Which states a fire may start from, by why it fires.
FIRE_FROM = {
    "due": {"queued"},
    "run": {"queued", "failed", "unavailable"},
    "retry": {"failed", "unavailable", "delivered"},
}
# Runner-managed jobs need the current attempt id to reach these.
ATTEMPT_CHECKED = {"completed", "failed", "cancelled"}

TEMPLATE_STATES = ("active", "paused", "cancelled")
TEMPLATE_TRANSITIONS: dict[str, set[str]] = {
    "active": {"paused", "cancelled"},
    "paused": {"active", "cancelled"},
    "cancelled": set(),
}
OVERLAP_POLICIES = ("skip", "buffer_one", "allow")
# repowire's agent types: accepted at create; a fire of one with no configured command ends
# `unavailable` / `invalid_backend`.
AGENT_BACKENDS = ("claude-code", "opencode", "codex", "gemini", "antigravity", "pi", "mcp-http")
PROCESS_SCOPES = ("per_fire", "persistent")
CONTINUITIES = ("resume", "fresh")
