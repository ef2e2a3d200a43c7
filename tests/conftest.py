"""Fixtures the whole suite shares (the helpers are in tests/support/): a private redis-server
on a free port, the real shim over HTTP, real workers.

The redis-server and the environment are set up in `pytest_configure`, before any project
module reads its settings, so nothing here can touch the user's Redis.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from tests.support import records
from tests.support.http import Api

LEGACY_KEY = "legacy-worker-key-for-tests-0123456789"
FAKE_AGENT = str(Path(__file__).parent / "fakes" / "fake_agent.py")
# The shipped claude-code backend, pointed at the fake agent CLI (same flags, same output).
BACKENDS = {
    "claude-code": {
        "command": [sys.executable, FAKE_AGENT, "-p", "{prompt}", "--output-format", "json"],
        "resume_command": [
            sys.executable,
            FAKE_AGENT,
            "-p",
            "{prompt}",
            "--output-format",
            "json",
            "--resume",
            "{session_id}",
        ],
        "session_id_from": {"json_field": "session_id"},
        "result_from": {"json_field": "result"},
    }
}
LEGACY_ORG_SLUG = "legacy-org"


def pytest_configure(config):
    tmp = Path(tempfile.mkdtemp(prefix="dispatchyard-test-"))
    from tests.support.redis_server import RedisServer

    server = RedisServer(tmp / "redis")
    server.start()
    os.environ.update(
        {
            "DISPATCHYARD_REDIS_URL": server.url,
            "DISPATCHYARD_DEV_MODE": "1",
            "DISPATCHYARD_DATA_DIR": str(tmp / "data"),
            "DISPATCHYARD_WORKER_API_KEY": LEGACY_KEY,
            "DISPATCHYARD_DEFAULT_ORG": LEGACY_ORG_SLUG,
            "DISPATCHYARD_MACHINE": "test-host",
            "DISPATCHYARD_PLATFORM_URL": "https://platform.test",
            "DISPATCHYARD_BACKENDS": json.dumps(BACKENDS),
            # Short leases and grace periods: reliability tests must not wait out production
            # timeouts.
            "DISPATCHYARD_JOB_LEASE_S": "3",
            # Every 2xx JSON body is checked against the model its route declares (a mismatch
            # answers 500): the whole suite proves the API's answer models.
            "DISPATCHYARD_CHECK_RESPONSES": "1",
            "DISPATCHYARD_JOB_KILL_GRACE_S": "1",
            # A private tmux server for the pane routes, never the user's (the tests that use
            # it start and kill it).
            "DISPATCHYARD_TMUX_SOCKET": f"dy-test-{os.urandom(4).hex()}",
        }
    )
    config._dispatchyard = (server, tmp)


def pytest_unconfigure(config):
    server, tmp = getattr(config, "_dispatchyard", (None, None))
    if server is not None:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# The markers of pyproject.toml, by directory: `-m reliability`, `-m "not e2e"` select them.
MARKERS_BY_DIRECTORY = {"e2e": pytest.mark.e2e, "reliability": pytest.mark.reliability}


def pytest_collection_modifyitems(config, items):
    tests = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(tests).parts if item.path.is_relative_to(tests) else ()
        if parts and parts[0] in MARKERS_BY_DIRECTORY:
            item.add_marker(MARKERS_BY_DIRECTORY[parts[0]])


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ["DISPATCHYARD_REDIS_URL"]


@pytest.fixture(scope="session")
def r(redis_url):
    import redis

    return redis.Redis.from_url(redis_url, decode_responses=True)


@pytest.fixture(autouse=True)
def _clock_reset():
    from dispatchyard.state import clock

    clock.reset()
    yield
    clock.reset()


@pytest.fixture(scope="session")
def shim_url():
    """The Flask app served over real HTTP by werkzeug's threaded server, in this process
    (so tests can move the shared clock)."""
    from werkzeug.serving import make_server

    from api_shim import create_app

    server = make_server("127.0.0.1", 0, create_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def api(shim_url) -> Api:
    return Api(shim_url)


@pytest.fixture
def org(r) -> records.Org:
    return records.new_org(r)


@pytest.fixture(scope="session")
def legacy_org(r) -> records.Org:
    return records.new_org(r, slug=LEGACY_ORG_SLUG)


@pytest.fixture(scope="session")
def celery_worker():
    """A real Celery worker consuming the suite's private Redis, in this process, for the rest
    of the run once a test asks for it (so a subprocess stack has a Redis of its own: see
    tests/support/stack.py)."""
    from celery.contrib.testing.worker import start_worker

    from workers import app

    with start_worker(
        app, pool="threads", concurrency=4, perform_ping_check=False, shutdown_timeout=30
    ) as worker:
        yield worker
