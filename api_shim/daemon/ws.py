"""`WS /ws`: a peer's live transport (repowire's protocol).

The first frame is `{type: "connect", display_name, circle, backend, path, pane_id, peer_id?,
role?, model?, agent_pid?, auth_token?}`; the daemon registers the peer, records that this
process holds its socket, and answers `{type: "connected", session_id, display_name}`. Then
the daemon pushes `ask`, `notify`, `query` and `broadcast` frames (from any shim process or
worker, through this process's hub), and the peer sends `status` (busy/idle/online), `receipt`
or `delivery_ack` (a frame was typed into its pane, or not), `response` (the reply to a
`query`) and `set_circle`. The WebSocket protocol itself is flask-sock's (simple-websocket).

Limits (settings): a socket that sends no connect frame within `ws_connect_timeout_s` is
refused like a wrong first frame (4000); a frame from the peer larger than
`ws_max_message_bytes` closes the socket with 1009 (message too big, simple-websocket's own
check); beyond `ws_max_sockets` open in this process a new socket is answered an error frame and
1013 (try again later); frames to a peer wait in a backlog of `ws_send_backlog_bytes`, beyond
which its connection is cut (api_shim/held_socket.py).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import re
import socket
import threading
from typing import Any

from flask import Blueprint, current_app, g, request
from flask.blueprints import BlueprintSetupState
from flask_sock import Sock

from api_shim import hub
from api_shim.context import r, settings
from api_shim.daemon import is_loopback
from api_shim.daemon.peers import agent_alive
from api_shim.declare import declare
from api_shim.held_socket import Socket
from dispatchyard.state import asks, clock, connections, deliveries, peer_lifecycle, peers
from dispatchyard.state.errors import Conflict, NotFound
from dispatchyard.state.models import AGENT_BACKENDS, PeerState

log = logging.getLogger("dispatchyard.ws")
blueprint = Blueprint("mesh_ws", __name__)
sock = Sock()

IDENTIFIER = re.compile(r"^[a-zA-Z0-9._-]{1,64}$")
ROLES = ("agent", "service", "orchestrator", "human")
CLOSE_LINGER_S = 1.0  # how long a closed socket waits for the peer to answer its close frame
STATUS_FRAMES = {"busy": PeerState.BUSY, "idle": PeerState.ONLINE, "online": PeerState.ONLINE}


class _Reader(threading.Thread):
    """simple-websocket's reader thread, which wakes the socket's receiver once more as it
    ends: on a frame over the size limit simple-websocket 1.1 sets the receiver's event before
    it marks the socket closed, and a receiver woken in between would wait for ever."""

    def __init__(self, target: Any, **kwargs: Any) -> None:
        super().__init__(target=target, **kwargs)
        self.ws = getattr(target, "__self__", None)

    def run(self) -> None:
        try:
            super().run()
        finally:
            if self.ws is not None:
                self.ws.event.set()


@blueprint.record_once
def _server_options(state: BlueprintSetupState) -> None:
    """simple-websocket's own limit on a frame from the peer (it closes with 1009)."""
    limit = state.app.extensions["dispatchyard"].settings.ws_max_message_bytes
    state.app.config["SOCK_SERVER_OPTIONS"] = {"max_message_size": limit, "thread_class": _Reader}


def _refuse(ws: Any, close_code: int, error: str, **extra: Any) -> None:
    ws.send(json.dumps({"type": "error", "error": error, **extra}))
    ws.close(reason=close_code, message=error)


def _linger(ws: Any) -> None:
    """The end of a socket: once a close frame went out, the peer has CLOSE_LINGER_S to answer
    it; then the connection is cut, so a peer that never answers (or never reads) keeps
    neither the socket's reader thread nor the connection."""
    reader = getattr(ws, "thread", None)
    if not ws.connected and isinstance(reader, threading.Thread):
        reader.join(CLOSE_LINGER_S)
    with contextlib.suppress(OSError, AttributeError):
        ws.sock.shutdown(socket.SHUT_RDWR)


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


def _flush_queued(held: Socket, now_ms: int) -> None:
    """Deliveries queued while the peer polled go out on its new socket."""
    for delivery in deliveries.drain(r(), held.peer_id, 50):
        frame = {k: v for k, v in delivery.items() if k not in ("created_at", "expires_at")}
        frame["type"] = delivery["kind"]
        held.send(frame)


def _on_frame(held: Socket, data: dict[str, Any]) -> None:
    kind = data.get("type")
    now = clock.now_ms()
    if kind == "status" and data.get("status") in STATUS_FRAMES:
        # A status frame of a peer removed or retired meanwhile changes nothing.
        with contextlib.suppress(NotFound, Conflict):
            peers.set_status(r(), held.peer_id, STATUS_FRAMES[data["status"]], now)
    elif kind in ("receipt", "delivery_ack"):
        trace_id = data.get("correlation_id")
        if not trace_id and isinstance(data.get("delivery_id"), str):
            trace_id = held.trace_of(data["delivery_id"])  # an ask acked by its frame's id
        if isinstance(trace_id, str) and len(trace_id) <= 100:
            ok = data.get("status", "injected") in ("injected", "delivered", "ok", "received")
            stage = "pane_injected" if ok else "injection_failed"
            # Queued for this process's stage writer: the reader goes back to its socket.
            stages = hub.get(r()).stages
            stages.stage(trace_id, "hook_received", now, peer_id=held.peer_id)
            detail = {"status": data.get("status"), "detail": data.get("detail")}
            stages.stage(trace_id, stage, now, ok=ok, peer_id=held.peer_id, **detail)
    elif kind == "response" and isinstance(data.get("correlation_id"), str):
        text = data.get("text")
        if isinstance(text, str):
            fields = {"reply_text": text, "answer": {"outcome": "answered", "text": text}}
            cid = data["correlation_id"]
            asks.close(r(), cid, now, reason="response", fields=fields, responder=held.peer_id)
    elif kind == "pong":
        pass


@blueprint.before_request
def _admit() -> None:
    """A place among the process's `ws_max_sockets`, taken before the upgrade is answered (so
    sockets are counted in the order they came) and given back when the request ends."""
    g.ws_admitted = hub.get(r()).admit(settings().ws_max_sockets)


@blueprint.teardown_request
def _release(_: BaseException | None) -> None:
    if g.pop("ws_admitted", False):
        hub.get(r()).release()


@declare(listed=False)
def websocket(ws: Any) -> None:
    if not g.get("ws_admitted", False):
        cap = settings().ws_max_sockets
        error = f"Try again later: this daemon process holds its maximum of {cap} sockets"
        _refuse(ws, 1013, error, code="too_many_sockets")
        _linger(ws)
        return
    try:
        _serve(ws, hub.get(r()))
    finally:
        _linger(ws)


def _serve(ws: Any, the_hub: hub.Hub) -> None:
    if settings().daemon_auth_token is None and not is_loopback(request.remote_addr):
        _refuse(ws, 4001, "daemon token not configured")
        return
    wait_s = settings().ws_connect_timeout_s
    raw = ws.receive(timeout=wait_s)
    if raw is None:
        detail = f"none within {wait_s:g} s"
        _refuse(ws, 4000, "First message must be connect", code="connect_timeout", detail=detail)
        return
    try:
        data = json.loads(raw)
    except (ValueError, TypeError):
        data = None
    if not isinstance(data, dict):
        _refuse(ws, 4000, "First message must be connect")
        return
    refusal = _connect_error(data)
    if refusal is not None:
        _refuse(ws, *refusal)
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
    held = the_hub.attach(peer["peer_id"], ws, settings().ws_send_backlog_bytes)
    try:
        previous = connections.connect(r(), peer["peer_id"], the_hub.node, now)
    except (NotFound, Conflict) as refused:
        # Removed or retired between its registration and here.
        the_hub.detach(held)
        if refused.state == PeerState.RETIRED:
            code, error = 4004, "Peer cannot connect: retired"
        else:
            code, error = 4002, f"Peer cannot connect: {refused.message}"
        held.send({"type": "error", "error": error})
        held.close(code, error)
        held.finish()
        return
    try:
        _hold(held, the_hub, peer, previous, now)
    finally:
        held.finish()
        if the_hub.detach(held):
            connections.disconnect(r(), held.peer_id, the_hub.node, clock.now_ms())


def _hold(held: Socket, the_hub: hub.Hub, peer: dict[str, Any], previous: str, now: int) -> None:
    """The connected peer's socket: its frames in, until either side closes it."""
    if previous and previous != the_hub.node:
        # The peer reconnected here; its old socket on another process must not linger.
        connections.close_on(r(), previous, peer["peer_id"], 4005, "superseded")
    held.send({"type": "connected", "session_id": peer["peer_id"], "display_name": peer["name"]})
    _flush_queued(held, now)
    current_app.logger.debug("peer %s connected", peer["peer_id"])
    while not held.closed:
        raw = held.ws.receive(timeout=None)
        if raw is None:
            break
        try:
            frame = json.loads(raw)
        except ValueError:
            continue
        if isinstance(frame, dict):
            _on_frame(held, frame)


# flask-sock wraps the view (functools.wraps, so the declaration goes along) and registers the
# wrapper on the blueprint.
sock.route("/ws", bp=blueprint)(websocket)
