"""What the session routes accept: the bodies a client enqueues with and a session's runner
posts (RenseiAI/donmai's shapes), and the list's query."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api_shim.vocab import ReportableStatus, WorkType

SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class EnqueueBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    issueId: str = Field(min_length=1, max_length=200)
    issueIdentifier: str = Field(min_length=1, max_length=200)
    projectId: str | None = Field(None, max_length=100)
    project: str | None = Field(None, max_length=100)
    priority: int = Field(3, ge=1, le=5)
    prompt: str = Field(min_length=1, max_length=200_000)
    workType: WorkType = "development"
    sourceSessionId: str | None = Field(None, max_length=200)
    trackerSessionId: str | None = Field(None, pattern=SESSION_ID.pattern)
    linearSessionId: str | None = Field(None, pattern=SESSION_ID.pattern)
    providerSessionId: str | None = Field(None, max_length=200)
    kits: dict[str, Any] = Field(default_factory=dict)
    systemPrompt: str | None = Field(None, max_length=200_000)
    model: str | None = Field(None, max_length=200)
    provider: str | None = Field(None, max_length=100)

    @model_validator(mode="after")
    def _project_named(self) -> EnqueueBody:
        if not self.projectId and not self.project:
            raise ValueError("projectId or project is required")
        if (
            self.trackerSessionId
            and self.linearSessionId
            and self.trackerSessionId != self.linearSessionId
        ):
            raise ValueError("trackerSessionId and linearSessionId differ")
        return self


class WorkerBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    workerId: str = Field(min_length=1, max_length=100)


class RunnerBody(BaseModel):
    """A body the session's runner posts. Its `workerId` may be empty or absent: the runner
    copies it from its session detail, which the cloud-runner detail does not carry, and sends
    it with `omitempty` on lock-refresh and completion (RenseiAI/donmai)."""

    model_config = ConfigDict(extra="ignore", strict=True)
    workerId: str | None = Field(None, max_length=100)


class StatusError(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    message: str = Field(max_length=20_000)


class StatusBody(RunnerBody):
    status: ReportableStatus
    providerSessionId: str | None = Field(None, max_length=200)
    worktreePath: str | None = Field(None, max_length=4096)
    error: StatusError | None = None
    totalCostUsd: float | None = Field(None, ge=0, allow_inf_nan=False)
    inputTokens: int | None = Field(None, ge=0)
    outputTokens: int | None = Field(None, ge=0)
    provider: str | None = Field(None, max_length=100)


class AgentActivity(BaseModel):
    """One event of the runner's activity stream (donmai runtime/activity `payload`): `type` is
    thought | action | response | error | context; only some events name a tool. Its other
    fields (toolInput, toolOutput, toolUseId, ...) are accepted and not kept."""

    model_config = ConfigDict(extra="ignore", strict=True)
    type: str = Field(min_length=1, max_length=100)
    content: str = Field(min_length=1)
    toolName: str | None = Field(None, max_length=200)


class ActivityBody(RunnerBody):
    """`{workerId, activity: {type, content, toolName?}}` as the runner posts it, or the older
    flat `{workerId, toolName}`."""

    __messages__ = {"activity": "activity with type and content is required"}
    activity: AgentActivity | None = None
    toolName: str | None = Field(None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one_shape(self) -> ActivityBody:
        if self.activity is None and self.toolName is None:
            raise ValueError("activity with type and content is required")
        return self


class LockRefreshBody(RunnerBody):
    issueId: str = Field(min_length=1, max_length=200)


class CompletionBody(RunnerBody):
    """Bounded by the body limit only: a summary refused here would be a lost result."""

    __messages__ = {"summary": "summary is required"}
    summary: str = Field(min_length=1)


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    projectId: str | None = Field(None, max_length=100)
    project: str | None = Field(None, max_length=100)
    limit: int | None = Field(None, ge=1, le=1000)
