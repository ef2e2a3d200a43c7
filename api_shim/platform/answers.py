"""What the platform group answers (camelCase) for orgs, workers and mutations, as pydantic
models of the shapes `views.py` and the routes build (sessions: session_answers.py). Declared
on each route (`api_shim/declare.py`): the OpenAPI document is made from them and, under the
tests, every 2xx body is checked against them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api_shim.answers import Answer, Json, OpenAnswer, absent
from api_shim.platform.session_answers import WorkItem
from api_shim.vocab import Role
from dispatchyard.state.models import MutationState

# ---- Orgs: projects and keys -------------------------------------------------------------------


class Project(Answer):
    id: str
    slug: str
    name: str
    repository: str | None
    orgId: str
    createdAt: str | None


class ProjectCreated(Answer):
    project: Project


class Projects(Answer):
    projects: list[Project]


class Key(Answer):
    id: str
    keyPrefix: str
    name: str
    role: Role
    projects: Literal["all"] | list[str]
    scopes: list[str]
    createdAt: str | None
    revokedAt: str | None


class KeyCreated(Key):
    key: str = Field(description="the secret, shown once")


class Keys(Answer):
    keys: list[Key]


class Revoked(Answer):
    revoked: Literal[True]


# ---- Workers (daemon hosts) --------------------------------------------------------------------


class RuntimeToken(Answer):
    runtimeToken: str
    runtimeTokenExpiresAt: str


class Registered(RuntimeToken):
    workerId: str
    heartbeatInterval: int
    pollInterval: int


class Poll(Answer):
    work: list[WorkItem]
    preClaimed: Literal[True]
    claimedSessionIds: list[str]


class Deregistered(Answer):
    deregistered: Literal[True]
    unclaimedSessions: list[str]


class HostStatus(Answer):
    status: str
    recommendedAction: str = absent("present when there is one")
    candidatePoolIds: list[str] = absent("present when the host has candidate pools")


class Host(Answer):
    id: str
    hostname: str
    capacity: int
    activeCount: int
    status: Literal["active", "offline", "draining"]
    hostStatus: HostStatus
    lastHeartbeat: str
    registeredAt: str | None
    version: str | None
    projects: Literal["all"] | list[str]
    machineId: str | None
    region: str | None


class HostSummary(Answer):
    totalWorkers: int
    activeWorkers: int
    totalCapacity: int
    totalActive: int
    availableCapacity: int
    queueLength: int


class Hosts(Answer):
    workers: list[Host]
    summary: HostSummary


class PendingMutation(Answer):
    id: str
    op: str
    params: Json
    requestedAt: str
    requestedBy: str


class HeartbeatAnswer(Answer):
    acknowledged: Literal[True]
    serverTime: str
    pendingWorkCount: int
    hostStatus: HostStatus
    pendingMutations: list[PendingMutation]
    allowlistRequested: Literal[True] = absent("present when the host should send its allowlist")


# ---- Mutations ---------------------------------------------------------------------------------


class MutationEvent(OpenAnswer):
    """One audit entry: when, what, and the event's own fields (who, why, counts)."""

    at: str | None
    event: str


class Mutation(Answer):
    id: str
    orgId: str
    workerHostId: str
    op: str
    params: Json
    status: MutationState
    requestedBy: str | None
    requestedAt: str | None
    deliveredAt: str | None
    lastDeliveredAt: str | None
    cancelledAt: str | None
    appliedAt: str | None
    failedAt: str | None
    error: str | None
    deliveryCount: int


class MutationWithHistory(Mutation):
    history: list[MutationEvent]


class MutationCreated(Answer):
    mutation: Mutation


class MutationFound(Answer):
    mutation: MutationWithHistory


class Mutations(Answer):
    mutations: list[Mutation]


class Cancelled(Answer):
    cancelled: Literal[True]


class CancelRefused(Answer):
    """The cancel lost a race (the mutation was delivered or ended meanwhile): 409."""

    cancelled: Literal[False]
    reason: str
