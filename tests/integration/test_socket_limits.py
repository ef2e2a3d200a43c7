"""What `/ws` does with a peer that misbehaves on its own socket: one that never sends its connect
frame is closed once `ws_connect_timeout_s` has passed (shortened here), one that sends a frame
over `ws_max_message_bytes` is closed with 1009. (Other peers' sockets under one that stops
reading, and the cap on sockets per process, are in tests/e2e/test_socket_stress.py: they need
a shim process of their own.)"""

from __future__ import annotations

import json
import secrets
import threading
import time

import pytest

from dispatchyard.settings import Settings
from tests.support.mesh_client import MeshPeer
from tests.support.raw_ws import RawPeer
from tests.support.waits import wait_for

CONNECT_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def short_shim():
    """The shim over real HTTP (werkzeug, in this process) with a short connect timeout."""
    from werkzeug.serving import make_server

    from api_shim import create_app

    app = create_app(Settings(ws_connect_timeout_s=CONNECT_TIMEOUT_S))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_the_connect_timeout_is_10_s_at_most_by_default():
    assert Settings.model_fields["ws_connect_timeout_s"].default <= 10


def test_a_socket_that_never_sends_its_connect_frame_is_closed_after_the_timeout(short_shim):
    peer = RawPeer(short_shim)
    opened = time.monotonic()
    try:
        error = peer.frame(timeout=CONNECT_TIMEOUT_S + 5)
        assert error is not None
        assert error["type"] == "error" and error["code"] == "connect_timeout", error
        assert error["error"] == "First message must be connect"
        close = peer.close_frame(timeout=5)
        took = time.monotonic() - opened
        assert close == (4000, "First message must be connect")
        assert CONNECT_TIMEOUT_S <= took < CONNECT_TIMEOUT_S + 1.0, took
        # This client never answers the close frame: the daemon ends the connection itself
        # (after its one-second linger), so the socket holds no thread of the daemon.
        assert peer.ends(timeout=5)
    finally:
        peer.close()


def _status_frame(length: int) -> str:
    """A `status busy` frame of exactly `length` characters (padding in an unknown field)."""
    empty = json.dumps({"type": "status", "status": "busy", "pad": ""})
    frame = json.dumps({"type": "status", "status": "busy", "pad": "x" * (length - len(empty))})
    assert len(frame) == length
    return frame


def test_a_frame_over_the_size_limit_closes_the_socket_with_1009(api, shim_url):
    limit = Settings().ws_max_message_bytes
    assert limit == 1_048_576  # the default, which the suite's shim runs with
    peer = MeshPeer(shim_url, "big", f"c{secrets.token_hex(3)}")
    try:
        # One at the limit is taken like any frame.
        peer.ws.send(_status_frame(limit))
        wait_for(lambda: api.get(f"/peers/{peer.peer_id}").json()["status"] == "busy")
        peer.send(type="status", status="idle")
        wait_for(lambda: api.get(f"/peers/{peer.peer_id}").json()["status"] == "online")
        # One character more closes the socket: 1009, message too big.
        peer.ws.send(_status_frame(limit + 1))
        wait_for(lambda: peer.closed is not None, timeout=10, message="the socket to close")
        assert peer.closed == (1009, "Message is too big")
        info = wait_for(
            lambda: (i := api.get(f"/peers/{peer.peer_id}").json())["ws_connected"] is False and i
        )
        assert info["status"] == "offline"
    finally:
        peer.close()
