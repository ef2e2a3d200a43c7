"""What the peer routes accept (repowire 0.17's request models): registration, the list's
query, going offline, unregistering, a description, a circle move and a session update."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PeerBackend = Literal["claude-code", "opencode", "codex", "gemini", "antigravity", "pi"]
Role = Literal["agent", "service", "orchestrator", "human"]
TurnState = Literal["idle", "working", "awaiting_input", "pending_first_turn"]
CircleSource = Literal["tmux", "spawn_hint", "fallback"]
NAME = r"^[a-zA-Z0-9._-]+$"
CIRCLE = r"^[a-zA-Z0-9._-]{1,64}$"
CIRCLE_RE = re.compile(CIRCLE)


class RegisterBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    peer_id: str | None = Field(None, pattern=r"^repow-[A-Za-z0-9._-]+-[0-9a-f]{8}$")
    name: str = Field(min_length=1, max_length=64, pattern=NAME)
    path: str | None = Field(None, max_length=4096)
    machine: str | None = Field(None, max_length=200)
    tmux_session: str | None = Field(None, max_length=200)
    pane_id: str | None = Field(None, max_length=50)
    backend: PeerBackend = "claude-code"
    model: str | None = Field(None, max_length=200)
    circle: str | None = None
    circle_source: CircleSource | None = None
    role: Role = "agent"
    turn_state: TurnState | None = None
    agent_pid: int | None = None
    parent_pid: int | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("circle")
    @classmethod
    def _circle(cls, v: str | None) -> str | None:
        if v is not None and not CIRCLE_RE.match(v):
            raise ValueError("Circle must match ^[a-zA-Z0-9._-]+$ and be <= 64 chars")
        return v


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    status: Literal["online", "busy", "offline"] | None = None
    path: str | None = None
    backend: PeerBackend | None = None
    circle: str | None = None


class OfflineBody(BaseModel):
    """Why a peer went offline; `terminal` retires it. Every field has repowire's default, so
    hooks that send no body (or `{}`) keep the old behaviour."""

    model_config = ConfigDict(extra="ignore")
    reason: str = Field("offline_route", max_length=200)
    source: str = Field("peers_route", max_length=200)
    detail: str | None = Field(
        "Peer was explicitly marked offline through the HTTP route.", max_length=2000
    )
    terminal: bool = False


class UnregisterBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(max_length=200)


class DescriptionBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    description: str = Field(max_length=10_000)


class CircleBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    peer_name: str = Field(min_length=1, max_length=200)
    circle: str = Field(min_length=1, max_length=64, pattern=CIRCLE)


class SessionUpdateBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    peer_name: str | None = Field(None, max_length=200)
    pane_id: str | None = Field(None, max_length=50)
    # Checked by the route, for repowire's 400 message.
    status: str | None = Field(None, max_length=50)
    turn_state: TurnState | None = None
    model: str | None = Field(None, max_length=200)
    metadata: dict[str, Any] | None = None
