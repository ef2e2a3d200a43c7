"""Peers: register, list and look up, mark offline or retire, remove, describe, move between
circles, and report session state (docs/api.md, with repowire 0.17's shapes and messages).
A peer's presence is its WebSocket's (`api_shim/daemon/ws.py`); these routes never make a
peer online. The tmux pane routes and the doctor report live elsewhere."""

from __future__ import annotations

import os
import socket
from typing import Any

from flask import request

from api_shim import bodies
from api_shim.answers import Ok
from api_shim.context import r
from api_shim.daemon import blueprint, peer_answers, views
from api_shim.daemon.peer_requests import (
    CircleBody,
    DescriptionBody,
    ListQuery,
    OfflineBody,
    RegisterBody,
    SessionUpdateBody,
    UnregisterBody,
)
from api_shim.declare import declare
from api_shim.errors import ApiError
from dispatchyard.state import clock, peer_lifecycle, peer_lookups, peers
from dispatchyard.state.models import PeerState

SESSION_STATUSES = ("online", "busy", "offline")
Peer = dict[str, Any]


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


def one(found: Peer | list[Peer] | None, ident: str) -> Peer:
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
@declare(body=RegisterBody, responses={200: peer_answers.PeerRegistered})
def register_peer() -> dict[str, Any]:
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
@declare(query=ListQuery, responses={200: peer_answers.Peers})
def list_peers() -> dict[str, Any]:
    given = {k: v for k, v in request.args.items() if v != ""}  # `?status=` filters nothing
    q = bodies.validate(ListQuery, given, loc="query")
    found = peer_lookups.search(
        r(), status=q.status, path=q.path, backend=q.backend, circle=q.circle
    )
    now = clock.now_ms()
    return {"peers": [views.peer(p, now) for p in found]}


@blueprint.get("/peers/by-pane/<pane_id>")
@declare(responses={200: peer_answers.PeerInfo})
def get_peer_by_pane(pane_id: str) -> dict[str, Any]:
    found = peer_lookups.lookup_pane(r(), pane_id)
    if found is None:
        raise ApiError(404, f"No peer for pane: {pane_id}")
    return views.peer(found, clock.now_ms())


@blueprint.get("/peers/<ident>")
@declare(responses={200: peer_answers.PeerInfo})
def get_peer(ident: str) -> dict[str, Any]:
    peer = one(peer_lookups.lookup(r(), ident, _circle_arg()), ident)
    return views.peer(peer, clock.now_ms())


def _unregister(ident: str, circle: str | None) -> dict[str, Any]:
    peer = one(peers.resolve(r(), ident, circle), ident)
    peer_lifecycle.delete(r(), peer["peer_id"])
    return views.OK


@blueprint.delete("/peers/<ident>")
@declare(responses={200: Ok})
def delete_peer(ident: str) -> dict[str, Any]:
    return _unregister(ident, _circle_arg())


@blueprint.post("/peer/unregister")
@declare(body=UnregisterBody, responses={200: Ok})
def unregister_peer() -> dict[str, Any]:
    return _unregister(bodies.parse(UnregisterBody).name, None)


@blueprint.post("/peers/<ident>/offline")
@declare(body=OfflineBody, optional_body=True, responses={200: peer_answers.MarkedOffline})
def mark_offline(ident: str) -> dict[str, Any]:
    data = bodies.raw_json(allow_empty=True)
    body = bodies.validate(OfflineBody, {} if data is None else data)
    found = peers.resolve(r(), ident, _circle_arg())
    if found is None:
        # As repowire: the session-end hook of a peer the daemon no longer knows is not an
        # error, and there is nothing to cancel.
        return {"ok": True, "cancelled_queries": 0}
    peer = one(found, ident)
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
@declare(responses={200: Ok})
def touch_peer(ident: str) -> dict[str, Any]:
    peer = one(peers.resolve(r(), ident, _circle_arg()), ident)
    peer_lifecycle.update(r(), peer["peer_id"], clock.now_ms())
    return views.OK


@blueprint.post("/peers/<ident>/description")
@declare(body=DescriptionBody, responses={200: Ok})
def set_description(ident: str) -> dict[str, Any]:
    body = bodies.parse(DescriptionBody)
    peer = one(peers.resolve(r(), ident, _circle_arg()), ident)
    now = clock.now_ms()
    fields = {"description": body.description, "description_set_at": str(now)}
    peer_lifecycle.update(r(), peer["peer_id"], now, fields=fields)
    return views.OK


@blueprint.post("/peers/circle")
@declare(body=CircleBody, responses={200: Ok})
def set_circle() -> dict[str, Any]:
    body = bodies.parse(CircleBody)
    peer = one(peers.resolve(r(), body.peer_name), body.peer_name)
    peer_lifecycle.move_circle(r(), peer["peer_id"], body.circle)
    return views.OK


@blueprint.get("/circles/<name>/orchestrator")
@declare(responses={200: peer_answers.OrchestratorStatus})
def circle_orchestrator(name: str) -> dict[str, Any]:
    return views.orchestrator_status(name, peer_lookups.orchestrator(r(), name, clock.now_ms()))


@blueprint.post("/session/update")
@declare(body=SessionUpdateBody, responses={200: Ok})
def session_update() -> dict[str, Any]:
    body = bodies.parse(SessionUpdateBody)
    if body.status is None and body.turn_state is None and body.model is None:
        raise ApiError(400, "At least one of status, turn_state, or model is required")
    if body.status is not None and body.status not in SESSION_STATUSES:
        detail = f"Invalid status: {body.status}. Must be one of: online, busy, offline"
        raise ApiError(400, detail)
    if body.peer_name:
        ident = body.peer_name
        peer = one(peers.resolve(r(), ident), ident)
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
