"""What the session routes answer (camelCase), as pydantic models: a session record, a work
item (the queued payload), and each route's answer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, RootModel

from api_shim.answers import Answer, Json
from dispatchyard.state.models import SessionState


class Session(Answer):
    """A session record (times ISO-8601 with ms and Z, but `queuedAt` in epoch ms)."""

    id: str
    identifier: str | None
    issueId: str | None
    projectId: str | None
    status: SessionState
    priority: int | None
    workType: str | None
    workerId: str | None
    queuedAt: int | None
    claimedAt: str | None
    startedAt: str | None
    finishedAt: str | None
    updatedAt: str | None
    durationMs: int | None
    costUsd: float | None
    inputTokens: int | None
    outputTokens: int | None
    provider: str | None
    providerSessionId: str | None
    worktreePath: str | None
    lastTool: str | None
    lastActivityAt: str | None
    lockRefreshedAt: str | None
    error: Json | None


class SessionWithSummary(Session):
    summary: str | None = Field(description="the runner's completion summary")


class Health(Answer):
    level: Literal["green", "yellow", "red"]
    signals: list[str]


class ListedSession(Session):
    health: Health


class HealthSummary(Answer):
    green: int
    yellow: int
    red: int


class SessionList(Answer):
    sessions: list[ListedSession]
    count: int
    healthSummary: HealthSummary
    timestamp: str


class Enqueued(Answer):
    sessionId: str
    status: Literal["queued"]
    queuedAt: int


class WorkItem(Answer):
    """A queued session's payload, as a worker claims or polls it."""

    sessionId: str
    issueId: str
    issueIdentifier: str
    priority: int
    queuedAt: int
    prompt: str
    workType: str
    sourceSessionId: str | None
    projectId: str
    projectName: str
    repository: str | None
    kits: Json
    platformUrl: str
    organizationId: str
    linearSessionId: str | None
    providerSessionId: str | None
    authToken: str
    systemPrompt: str | None
    model: str | None
    promptContext: str
    systemPromptOverride: str | None


class SessionDetail(Answer):
    """The cloud runner's view of a queued session (GET /api/daemon/sessions/{id})."""

    sessionId: str
    issueId: str
    issueIdentifier: str
    priority: int
    queuedAt: int
    prompt: str
    workType: str
    sourceSessionId: str | None
    projectName: str
    repository: str | None
    kits: Json
    platformUrl: str
    organizationId: str
    linearSessionId: str | None
    providerSessionId: str | None
    authToken: str
    systemPrompt: str | None


class Claimed(Answer):
    claimed: Literal[True]
    session: Session
    work: WorkItem


class NotClaimed(Answer):
    claimed: Literal[False]
    reason: str


class ClaimAnswer(RootModel[Claimed | NotClaimed]):
    """Granted, or not (with its reason): both are 200."""


class StatusUpdated(Answer):
    updated: Literal[True]
    session: SessionWithSummary


class ActivityRecorded(Answer):
    recorded: Literal[True]
    sessionId: str
    type: str | None
    toolName: str | None


class LockRefreshed(Answer):
    refreshed: bool


class CompletionPosted(Answer):
    posted: Literal[True]
    partsPosted: int
    totalParts: int


class Nacked(Answer):
    nacked: Literal[True]
    sessionId: str
    requeued: Literal[True]
