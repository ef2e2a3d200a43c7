"""Redis unreachable: the shim answers 503 with the envelope, never a stack trace."""

from __future__ import annotations

import threading

import pytest
import redis
from werkzeug.serving import make_server

from api_shim import create_app
from dispatchyard.cli.devstack import free_port
from dispatchyard.settings import get_settings
from tests.support.http import Api


@pytest.fixture(scope="module")
def dead_shim():
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.2, decode_responses=True)
    server = make_server("127.0.0.1", 0, create_app(get_settings(), dead), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Api(f"http://127.0.0.1:{server.server_port}")
    server.shutdown()


def test_platform_routes_answer_503(dead_shim):
    resp = dead_shim.get("/api/workers", "rsk_live_" + "0" * 64)
    assert resp.status_code == 503
    assert resp.json() == {"error": "Store unavailable, retry shortly"}
    assert resp.headers["Retry-After"] == "1"
    # The credential is checked (in the store) before the body is read: 503, not 400.
    resp = dead_shim.post("/api/sessions", "rsk_live_" + "0" * 64, json={"issueId": "x"})
    assert resp.status_code == 503
    assert resp.json() == {"error": "Store unavailable, retry shortly"}


def test_health_answers_503_with_the_same_shape(dead_shim):
    resp = dead_shim.get("/health")
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] != "ok" and body["redis"]["ok"] is False
