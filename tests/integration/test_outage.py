"""Redis unreachable: the shim answers 503 with the envelope, never a stack trace."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner
from werkzeug.serving import make_server

from api_shim import create_app
from dispatchyard.cli import cli
from dispatchyard.cli.devstack import free_port
from dispatchyard.settings import get_settings
from tests.support.http import Api

BIN = Path(sys.executable).parent


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


def test_cli_with_the_shim_up_and_redis_down_says_what_to_start(dead_shim):
    result = CliRunner().invoke(cli, ["--url", dead_shim.base, "job", "list"])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert "HTTP 503" in line and "cannot reach Redis" in line and "make run" in line


def test_bootstrap_commands_with_redis_down_say_what_to_start(tmp_path):
    """`org create` and `key create` go straight to Redis: one line, no traceback, and the
    password of the Redis URL never printed."""
    url = f"redis://someone:hunter2@127.0.0.1:{free_port()}/0"
    env = {**os.environ, "DISPATCHYARD_REDIS_URL": url, "DISPATCHYARD_DATA_DIR": str(tmp_path)}
    for argv in (["org", "create", "Acme", "--slug", "acme"], ["key", "create", "--org", "x"]):
        done = subprocess.run(
            [str(BIN / "dispatchyard"), *argv, "--name", "k"]
            if argv[0] == "key"
            else [str(BIN / "dispatchyard"), *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 1, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert (
            "cannot reach Redis" in line and "make run" in line and "DISPATCHYARD_REDIS_URL" in line
        )
        assert "hunter2" not in done.stderr + done.stdout and "Traceback" not in done.stderr
