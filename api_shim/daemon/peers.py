"""Peers: register, list and look up, mark offline or retire, remove, describe, move between
circles, and report session state (docs/api.md, with repowire 0.17's shapes and messages).
A peer's presence is its WebSocket's (`api_shim/daemon/ws.py`); these routes never make a
peer online. The tmux pane routes and the doctor report live elsewhere."""

from __future__ import annotations

import os
import re
import socket
from typing import Any, Literal

from flask import request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api_shim import bodies
from api_shim.context import r
from api_shim.daemon import blueprint, views
from api_shim.errors import ApiError
from dispatchyard.state import clock, peer_lifecycle, peer_lookups, peers
from dispatchyard.state.models import PeerState

PeerBackend = Literal["claude-code", "opencode", "codex", "gemini", "antigravity", "pi"]
Role = Literal["agent", "service", "orchestrator", "human"]
TurnState = Literal["idle", "working", "awaiting_input", "pending_first_turn"]
CircleSource = Literal["tmux", "spawn_hint", "fallback"]
NAME = r"^[a-zA-Z0-9._-]+$"
CIRCLE = r"^[a-zA-Z0-9._-]{1,64}$"
CIRCLE_RE = re.compile(CIRCLE)
SESSION_STATUSES = ("online", "busy", "offline")
Peer = dict[str, Any]


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


def agent_alive(pid: int | None) -> bool:
    """Whether the agent process a registration names still runs on this machine (signal 0
    checks without signalling). Pids 0 and below name process groups, never an agent."""
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # it exists, under another user
    except (OSError, OverflowError):
        return False
    return True


def _one(found: Peer | list[Peer] | None, ident: str) -> Peer:
    """The peer a lookup found: 404 for none, 409 when the name is in several circles."""
    if found is None:
        raise ApiError(404, f"Peer not found: {ident}")
    if isinstance(found, list):
        circles = sorted({p.get("circle") or "global" for p in found})
        candidates = [
            {"peer_id": p["peer_id"], "display_name": p["name"], "circle": p.get("circle")}
            for p in found
        ]
        detail = {
            "error": "ambiguous_peer",
            "peer": ident,
            "candidates": candidates,
            "message": (
                f"Ambiguous peer name {ident!r}: matches in circles {circles}. "
                "Specify a circle= or pass a peer_id."
            ),
        }
        raise ApiError(409, "ambiguous_peer", detail=detail)
    return found


def _circle_arg() -> str | None:
    return request.args.get("circle") or None


@blueprint.post("/peers")
@blueprint.post("/peer/register")
def register_peer():
    body = bodies.parse(RegisterBody)
    fields = body.model_dump(exclude={"circle_source"})
    fields["circle"] = body.circle or "global"
    fields["machine"] = body.machine or socket.gethostname()
    if body.model is None:
        del fields["model"]  # a registration that does not report its model keeps the known one
    try:
        peer = peer_lifecycle.register_or_revive(
            r(), fields, clock.now_ms(), agent_alive=agent_alive(body.agent_pid)
        )
    except peer_lifecycle.PeerRetired as retired:
        detail = (
            f"peer_id {retired.peer_id} was retired (agent_pid={body.agent_pid or 'absent'}); "
            "re-register via a fresh SessionStart"
        )
        raise ApiError(409, detail) from None
    return {
        "ok": True,
        "peer_id": peer["peer_id"],
        "display_name": peer["name"],
        "pane_assigned": not body.pane_id or peer.get("pane_id") == body.pane_id,
    }


@blueprint.get("/peers")
def list_peers():
    given = {k: v for k, v in request.args.items() if v != ""}  # `?status=` filters nothing
    q = bodies.validate(ListQuery, given, loc="query")
    found = peer_lookups.search(
        r(), status=q.status, path=q.path, backend=q.backend, circle=q.circle
    )
    now = clock.now_ms()
    return {"peers": [views.peer(p, now) for p in found]}


@blueprint.get("/peers/by-pane/<pane_id>")
def get_peer_by_pane(pane_id: str):
    found = peer_lookups.lookup_pane(r(), pane_id)
    if found is None:
        raise ApiError(404, f"No peer for pane: {pane_id}")
    return views.peer(found, clock.now_ms())


@blueprint.get("/peers/<ident>")
def get_peer(ident: str):
    peer = _one(peer_lookups.lookup(r(), ident, _circle_arg()), ident)
    return views.peer(peer, clock.now_ms())


def _unregister(ident: str, circle: str | None) -> dict[str, bool]:
    peer = _one(peers.resolve(r(), ident, circle), ident)
    peer_lifecycle.delete(r(), peer["peer_id"])
    return views.OK


@blueprint.delete("/peers/<ident>")
def delete_peer(ident: str):
    return _unregister(ident, _circle_arg())


@blueprint.post("/peer/unregister")
def unregister_peer():
    return _unregister(bodies.parse(UnregisterBody).name, None)


@blueprint.post("/peers/<ident>/offline")
def mark_offline(ident: str):
    data = bodies.raw_json(allow_empty=True)
    body = bodies.validate(OfflineBody, {} if data is None else data)
    found = peers.resolve(r(), ident, _circle_arg())
    if found is None:
        # As repowire: the session-end hook of a peer the daemon no longer knows is not an
        # error, and there is nothing to cancel.
        return {"ok": True, "cancelled_queries": 0}
    peer = _one(found, ident)
    cancelled = peer_lifecycle.mark_offline(
        r(),
        peer,
        clock.now_ms(),
        reason=body.reason,
        source=body.source,
        detail=body.detail,
        terminal=body.terminal,
    )
    return {"ok": True, "cancelled_queries": cancelled}


@blueprint.post("/peers/<ident>/touch")
def touch_peer(ident: str):
    peer = _one(peers.resolve(r(), ident, _circle_arg()), ident)
    peer_lifecycle.update(r(), peer["peer_id"], clock.now_ms())
    return views.OK


@blueprint.post("/peers/<ident>/description")
def set_description(ident: str):
    body = bodies.parse(DescriptionBody)
    peer = _one(peers.resolve(r(), ident, _circle_arg()), ident)
    now = clock.now_ms()
    fields = {"description": body.description, "description_set_at": str(now)}
    peer_lifecycle.update(r(), peer["peer_id"], now, fields=fields)
    return views.OK


@blueprint.post("/peers/circle")
def set_circle():
    body = bodies.parse(CircleBody)
    peer = _one(peers.resolve(r(), body.peer_name), body.peer_name)
    peer_lifecycle.move_circle(r(), peer["peer_id"], body.circle)
    return views.OK


@blueprint.get("/circles/<name>/orchestrator")
def circle_orchestrator(name: str):
    return views.orchestrator_status(name, peer_lookups.orchestrator(r(), name, clock.now_ms()))


@blueprint.post("/session/update")
def session_update():
    body = bodies.parse(SessionUpdateBody)
    if body.status is None and body.turn_state is None and body.model is None:
        raise ApiError(400, "At least one of status, turn_state, or model is required")
    if body.status is not None and body.status not in SESSION_STATUSES:
        detail = f"Invalid status: {body.status}. Must be one of: online, busy, offline"
        raise ApiError(400, detail)
    if body.peer_name:
        ident = body.peer_name
        peer = _one(peers.resolve(r(), ident), ident)
    elif body.pane_id:
        ident = body.pane_id
        found = peers.by_pane(r(), ident)
        if found is None:
            raise ApiError(404, f"No peer for pane: {ident}")
        peer = found
    else:
        raise ApiError(400, "Either peer_name or pane_id required")
    fields = {k: v for k, v in (("turn_state", body.turn_state), ("model", body.model)) if v}
    peer_lifecycle.update(
        r(),
        peer["peer_id"],
        clock.now_ms(),
        fields=fields,
        status=PeerState(body.status) if body.status else None,
        metadata=body.metadata,
        # As repowire: a turn_state alone is progress, not a sign of life.
        seen=body.status is not None or body.model is not None or bool(body.metadata),
    )
    return views.OK
