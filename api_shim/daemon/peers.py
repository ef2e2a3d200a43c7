"""Peers and asks, as far as durable jobs need them: register and look up peers, and let a
peer read and close the asks (job deliveries) addressed to it. daemon.md §4-5."""

from __future__ import annotations

from typing import Any, Literal

from flask import request
from pydantic import BaseModel, ConfigDict, Field

from api_shim import bodies
from api_shim.context import r
from api_shim.daemon import blueprint, views
from api_shim.errors import ApiError
from state import asks, clock, peers
from state.models import PeerState

PeerBackend = Literal["claude-code", "opencode", "codex", "gemini", "antigravity", "pi"]
Role = Literal["agent", "service", "orchestrator", "human"]
# The list filter also takes repowire's `busy`, a status no peer has here (it matches none).
LIST_STATUSES = (*PeerState, "busy")


class RegisterBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    peer_id: str | None = Field(None, pattern=r"^repow-[A-Za-z0-9._-]+-[0-9a-f]{8}$")
    name: str = Field(pattern=r"^[a-zA-Z0-9._-]+$", max_length=64)
    path: str | None = Field(None, max_length=4096)
    machine: str | None = Field(None, max_length=200)
    tmux_session: str | None = Field(None, max_length=200)
    pane_id: str | None = Field(None, max_length=50)
    backend: PeerBackend = "claude-code"
    circle: str = Field("global", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    role: Role = "agent"
    turn_state: str | None = Field(None, max_length=50)
    agent_pid: int | None = None
    parent_pid: int | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class AckBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    correlation_id: str = Field(max_length=100)
    message: str | None = Field(None, max_length=200_000)


def peer_info(peer: dict[str, Any]) -> dict[str, Any]:
    inbound = asks.pending(r(), peer["peer_id"], peer["name"], "inbound")
    return views.peer(peer, inbound, clock.now_ms())


@blueprint.post("/peers")
@blueprint.post("/peer/register")
def register_peer():
    body = bodies.parse(RegisterBody)
    peer = peers.register(r(), body.model_dump(), clock.now_ms())
    if peer is None:
        raise ApiError(409, "Peer cannot be registered again from its current status")
    return {
        "ok": True,
        "peer_id": peer["peer_id"],
        "display_name": peer["name"],
        "pane_assigned": bool(body.pane_id),
    }


@blueprint.get("/peers")
def list_peers():
    args = request.args
    status = args.get("status")
    if status is not None and status not in LIST_STATUSES:
        raise ApiError(400, "status must be one of: online, offline")
    found = peers.list_all(
        r(),
        status=status,
        path=args.get("path"),
        backend=args.get("backend"),
        circle=args.get("circle"),
    )
    return {"peers": [peer_info(p) for p in found]}


def _resolve(ident: str) -> dict[str, Any]:
    found = peers.resolve(r(), ident, request.args.get("circle"))
    if found is None:
        raise ApiError(404, f"Peer not found: {ident}")
    if isinstance(found, list):
        candidates = [{"peer_id": p["peer_id"], "circle": p["circle"]} for p in found]
        detail = {"error": "ambiguous_peer", "peer": ident, "candidates": candidates}
        raise ApiError(409, "ambiguous", detail=detail)
    return found


@blueprint.get("/peers/<ident>")
def get_peer(ident: str):
    return peer_info(_resolve(ident))


@blueprint.post("/peers/<ident>/offline")
def peer_offline(ident: str):
    peer = _resolve(ident)
    peers.set_status(r(), peer["peer_id"], PeerState.OFFLINE, clock.now_ms())
    return {"ok": True, "cancelled_queries": 0}


@blueprint.get("/asks/pending")
def pending_asks():
    pane_id, peer_id = request.args.get("pane_id"), request.args.get("peer_id")
    direction = request.args.get("direction", "inbound")
    if not pane_id and not peer_id:
        raise ApiError(400, "Must provide pane_id or peer_id")
    if pane_id and peer_id:
        raise ApiError(400, "Provide only one of pane_id or peer_id")
    if direction not in ("inbound", "outbound", "both"):
        raise ApiError(400, "direction must be one of: inbound, outbound, both")
    if pane_id:
        peer = peers.by_pane(r(), pane_id)
        if peer is None:
            raise ApiError(404, f"No peer for pane: {pane_id}")
    else:
        peer = peers.get(r(), peer_id or "")
        if peer is None:
            raise ApiError(404, f"No peer with id: {peer_id}")
    return {"asks": asks.pending(r(), peer["peer_id"], peer["name"], direction)}


@blueprint.post("/ack")
def ack():
    body = bodies.parse(AckBody)
    existing = asks.get(r(), body.correlation_id)
    if existing is None:
        raise ApiError(404, f"No open ask with correlation_id: {body.correlation_id}")
    if body.message is not None and existing["status"] == "closed":
        raise ApiError(410, f"Ask {body.correlation_id} is already closed")
    asks.close(r(), body.correlation_id, clock.iso(clock.now_ms()))
    return {"ok": True}
