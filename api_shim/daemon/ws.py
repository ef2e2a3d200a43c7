"""`WS /ws`: a peer's live transport (repowire's protocol).

The first frame is `{type: "connect", display_name, circle, backend, path, pane_id, peer_id?,
role?, model?, agent_pid?, auth_token?}`; the daemon registers the peer, records that this
process holds its socket, and answers `{type: "connected", session_id, display_name}`. Then
the daemon pushes `ask`, `notify`, `query` and `broadcast` frames (from any shim process or
worker, through this process's hub), and the peer sends `status` (busy/idle/online), `receipt`
or `delivery_ack` (a frame was typed into its pane, or not), `response` (the reply to a
`query`) and `set_circle`. The WebSocket protocol itself is flask-sock's (simple-websocket).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import re
from typing import Any

from flask import Blueprint, current_app, request
from flask_sock import Sock

from api_shim import hub
from api_shim.context import r, settings
from api_shim.daemon import is_loopback
from api_shim.daemon.peers import agent_alive
from api_shim.declare import declare
from dispatchyard.state import asks, clock, connections, deliveries, peer_lifecycle, peers, traces
from dispatchyard.state.errors import Conflict, NotFound
from dispatchyard.state.models import AGENT_BACKENDS, PeerState

log = logging.getLogger("dispatchyard.ws")
blueprint = Blueprint("mesh_ws", __name__)
sock = Sock()

IDENTIFIER = re.compile(r"^[a-zA-Z0-9._-]{1,64}$")
ROLES = ("agent", "service", "orchestrator", "human")
CONNECT_TIMEOUT_S = 10
STATUS_FRAMES = {"busy": PeerState.BUSY, "idle": PeerState.ONLINE, "online": PeerState.ONLINE}


def _refuse(ws: Any, close_code: int, error: str, **extra: Any) -> None:
    ws.send(json.dumps({"type": "error", "error": error, **extra}))
    ws.close(reason=close_code, message=error)


def _connect_error(data: dict[str, Any]) -> tuple[int, str] | None:
    """Why a connect frame is refused (close code, message), as repowire answers it."""
    if data.get("type") != "connect":
        return 4000, "First message must be connect"
    configured = settings().daemon_auth_token
    if configured is not None:
        token = data.get("auth_token")
        expected = configured.get_secret_value().encode()
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), expected):
            return 4001, "Authentication failed"
    if not isinstance(data.get("circle", "global"), str) or not IDENTIFIER.match(
        data.get("circle", "global")
    ):
        return 4002, "Invalid circle format"
    name = data.get("display_name")
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        return 4002, "Invalid display_name format"
    backend = data.get("backend", "claude-code")
    if backend not in AGENT_BACKENDS or backend == "mcp-http":
        return 4002, "Invalid backend"
    if data.get("role", "agent") not in ROLES:
        return 4002, f"Invalid role: must be one of {', '.join(ROLES)}"
    return None


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    def text(name: str) -> str | None:
        value = data.get(name)
        return value[:4096] if isinstance(value, str) else None

    pid = data.get("agent_pid")
    return {
        "peer_id": text("peer_id"),
        "name": data["display_name"],
        "circle": data.get("circle", "global"),
        "backend": data.get("backend", "claude-code"),
        "role": data.get("role", "agent"),
        "path": text("path"),
        "pane_id": text("pane_id"),
        "tmux_session": text("tmux_session"),
        "machine": text("machine"),
        "model": text("model"),
        "agent_pid": pid if isinstance(pid, int) and pid > 0 else None,
    }


def _flush_queued(held: hub.Socket, now_ms: int) -> None:
    """Deliveries queued while the peer polled go out on its new socket."""
    for delivery in deliveries.drain(r(), held.peer_id, 50):
        frame = {k: v for k, v in delivery.items() if k not in ("created_at", "expires_at")}
        frame["type"] = delivery["kind"]
        held.send(frame)


def _on_frame(held: hub.Socket, data: dict[str, Any]) -> None:
    kind = data.get("type")
    now = clock.now_ms()
    if kind == "status" and data.get("status") in STATUS_FRAMES:
        # A status frame of a peer removed or retired meanwhile changes nothing.
        with contextlib.suppress(NotFound, Conflict):
            peers.set_status(r(), held.peer_id, STATUS_FRAMES[data["status"]], now)
    elif kind in ("receipt", "delivery_ack"):
        trace_id = data.get("correlation_id") or data.get("delivery_id")
        if isinstance(trace_id, str) and len(trace_id) <= 100:
            ok = data.get("status", "injected") in ("injected", "delivered", "ok", "received")
            stage = "pane_injected" if ok else "injection_failed"
            traces.stage(r(), trace_id, "hook_received", now, peer_id=held.peer_id)
            detail = {"status": data.get("status"), "detail": data.get("detail")}
            traces.stage(r(), trace_id, stage, now, ok=ok, peer_id=held.peer_id, **detail)
    elif kind == "response" and isinstance(data.get("correlation_id"), str):
        text = data.get("text")
        if isinstance(text, str):
            fields = {"reply_text": text, "answer": {"outcome": "answered", "text": text}}
            cid = data["correlation_id"]
            asks.close(r(), cid, now, reason="response", fields=fields, responder=held.peer_id)
    elif kind == "pong":
        pass


@declare(listed=False)
def websocket(ws: Any) -> None:
    if settings().daemon_auth_token is None and not is_loopback(request.remote_addr):
        _refuse(ws, 4001, "daemon token not configured")
        return
    try:
        data = json.loads(ws.receive(timeout=CONNECT_TIMEOUT_S) or "null")
    except (ValueError, TypeError):
        data = None
    if not isinstance(data, dict):
        _refuse(ws, 4000, "First message must be connect")
        return
    error = _connect_error(data)
    if error is not None:
        _refuse(ws, *error)
        return
    fields = _fields(data)
    now = clock.now_ms()
    try:
        alive = agent_alive(fields["agent_pid"])
        peer = peer_lifecycle.register_or_revive(r(), fields, now, agent_alive=alive)
    except Conflict as refused:
        if refused.state == PeerState.RETIRED:
            _refuse(ws, 4004, "Peer is retired", code="peer_retired")
        else:
            _refuse(ws, 4002, "Peer cannot connect from its current status")
        return
    the_hub = hub.get(r())
    held = the_hub.attach(peer["peer_id"], ws)
    try:
        previous = connections.connect(r(), peer["peer_id"], the_hub.node, now)
    except (NotFound, Conflict) as refused:
        # Removed or retired between its registration and here.
        the_hub.detach(held)
        if refused.state == PeerState.RETIRED:
            _refuse(ws, 4004, "Peer cannot connect: retired")
        else:
            _refuse(ws, 4002, f"Peer cannot connect: {refused.message}")
        return
    if previous and previous != the_hub.node:
        # The peer reconnected here; its old socket on another process must not linger.
        connections.close_on(r(), previous, peer["peer_id"], 4005, "superseded")
    held.send({"type": "connected", "session_id": peer["peer_id"], "display_name": peer["name"]})
    _flush_queued(held, now)
    current_app.logger.debug("peer %s connected", peer["peer_id"])
    try:
        while not held.closed:
            raw = ws.receive(timeout=None)
            if raw is None:
                break
            try:
                frame = json.loads(raw)
            except ValueError:
                continue
            if isinstance(frame, dict):
                _on_frame(held, frame)
    finally:
        if the_hub.detach(held):
            connections.disconnect(r(), held.peer_id, the_hub.node, clock.now_ms())


# flask-sock wraps the view (functools.wraps, so the declaration goes along) and registers the
# wrapper on the blueprint.
sock.route("/ws", bp=blueprint)(websocket)
