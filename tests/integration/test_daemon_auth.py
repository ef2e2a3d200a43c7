"""Daemon bearer-token auth (the `daemonToken` scheme, docs/api.md): every route but /health and
/dashboard needs the token when one is set; without one, only loopback clients are answered."""

from __future__ import annotations

import threading

import pytest
from pydantic import SecretStr
from werkzeug.serving import make_server

from api_shim import create_app
from dispatchyard.settings import get_settings
from tests.support.http import Api
from tests.support.mesh_client import MeshPeer, refused

TOKEN = "daemon-token-for-tests"


@pytest.fixture(scope="module")
def guarded():
    settings = get_settings().model_copy(update={"daemon_auth_token": SecretStr(TOKEN)})
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Api(f"http://127.0.0.1:{server.server_port}")
    server.shutdown()


def test_missing_and_wrong_tokens(guarded):
    for path in ("/jobs", "/jobs/work-000000000000", "/traces/x"):
        resp = guarded.get(path)
        assert resp.status_code == 401
        assert resp.json() == {"detail": "Missing authorization header"}
        assert resp.headers["WWW-Authenticate"] == "Bearer"
        resp = guarded.get(path, "not-the-token")
        assert resp.status_code == 401 and resp.json() == {"detail": "Invalid auth token"}
        assert resp.headers["WWW-Authenticate"] == "Bearer"
    resp = guarded.post("/jobs", "wrong", json={"title": "x"})
    assert resp.status_code == 401
    resp = guarded.get("/jobs", headers={"Authorization": f"Basic {TOKEN}"})
    assert resp.status_code == 401


def test_right_token_and_open_paths(guarded):
    assert guarded.get("/jobs", TOKEN).status_code == 200
    resp = guarded.post("/jobs", TOKEN, json={"title": "x", "due_at": "2999-01-01T00:00:00Z"})
    assert resp.status_code == 200
    assert guarded.get("/health").status_code == 200  # no token needed
    # The platform group has its own credentials; the daemon token is not one of them.
    assert guarded.get("/api/workers", TOKEN).status_code == 401


def test_without_a_token_only_loopback_is_answered():
    app = create_app(get_settings())
    client = app.test_client()
    remote = {"REMOTE_ADDR": "10.1.2.3"}
    resp = client.get("/jobs", environ_base=remote)
    assert resp.status_code == 403 and resp.json == {"detail": "daemon token not configured"}
    assert client.get("/health", environ_base=remote).status_code == 200
    for loopback in ("127.0.0.1", "127.0.1.1", "::1"):
        assert client.get("/jobs", environ_base={"REMOTE_ADDR": loopback}).status_code == 200


def test_websocket_takes_the_token_in_its_connect_frame(guarded):
    hello = {"type": "connect", "display_name": "guarded-peer", "circle": "auth"}
    for token in (None, "not-the-token"):
        frame = {**hello, **({"auth_token": token} if token else {})}
        error, code = refused(guarded.base, frame)
        assert code == 4001
        assert error == {"type": "error", "error": "Authentication failed"}
    peer = MeshPeer(guarded.base, "guarded-peer", "auth", auth_token=TOKEN)
    try:
        assert peer.connected["type"] == "connected"
        info = guarded.get(f"/peers/{peer.peer_id}", TOKEN).json()
        assert info["ws_connected"] is True
    finally:
        peer.close()
