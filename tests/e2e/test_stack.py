"""End to end on real processes: the CLI bootstraps an org; a worker registers, polls, claims
and reports a session through gunicorn; a cloud runner reads its detail only while queued;
beat and a Celery worker run the periodic tick."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import records
from tests.support.http import Api
from tests.support.waits import wait_for

BIN = Path(sys.executable).parent


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "dispatchyard"), *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_cli_help_and_org_create():
    out = cli("--help")
    assert out.returncode == 0 and "org" in out.stdout and "run" in out.stdout
    out = cli("org", "create", "Acme E2E", "--slug", "acme-e2e-cli", "--json")
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert set(body) == {"orgId", "slug", "key"}
    assert body["orgId"].startswith("org_") and body["slug"] == "acme-e2e-cli"
    assert body["key"].startswith("rsk_live_") and len(body["key"]) == 9 + 64
    again = cli("org", "create", "Acme again", "--slug", "acme-e2e-cli", "--json")
    assert again.returncode == 1 and "exists" in again.stderr
    assert cli("org", "create", "Bad", "--slug", "Bad Slug").returncode == 2


def test_worker_lifecycle_through_gunicorn(stack):
    api = Api(stack.url)
    # The CLI bootstraps the org in the stack's Redis, where the stack's gunicorn reads it.
    created = cli("org", "create", "Flow", "--slug", "flow-e2e", "--json", env=stack.environ)
    body = json.loads(created.stdout)
    org = records.Org(body["orgId"], body["slug"], body["key"])
    records.project(api, org, "svc", repository="github.com/acme/svc")
    w = records.register(api, org, capacity=2, machineId="box-1")
    token, wid = w["runtimeToken"], w["workerId"]

    sid = records.enqueue(api, org, "svc", prompt="fix the bug", priority=1)["sessionId"]
    detail = api.get(f"/api/daemon/sessions/{sid}", token)
    assert detail.status_code == 200 and detail.json()["prompt"] == "fix the bug"
    assert detail.headers["Cache-Control"] == "no-store"

    polled = api.get(f"/api/workers/{wid}/poll", token).json()
    assert polled["claimedSessionIds"] == [sid]
    assert api.get(f"/api/daemon/sessions/{sid}", token).status_code == 404
    for status in ("running", "finalizing", "completed"):
        resp = api.post(
            f"/api/sessions/{sid}/status", token, json={"workerId": wid, "status": status}
        )
        assert resp.status_code == 200, resp.text
    assert resp.json()["session"]["status"] == "completed"
    listed = api.get("/api/workers", org.key).json()
    assert listed["summary"]["totalWorkers"] == 1 and listed["summary"]["totalActive"] == 0


def test_beat_and_worker_run_the_tick(stack):
    from dispatchyard.state import liveness

    r = stack.r
    first = wait_for(lambda: liveness.last_beat_tick(r), timeout=30, message="a beat tick")
    wait_for(lambda: (liveness.last_beat_tick(r) or 0) > first, timeout=30, message="a second tick")


def test_health_reports_redis_workers_and_beat(stack):
    import requests

    from dispatchyard.state import liveness

    r = stack.r
    wait_for(lambda: liveness.last_beat_tick(r), timeout=30, message="a beat tick")

    def healthy():
        body = requests.get(stack.url + "/health", timeout=5).json()
        return body["workers"]["online"] >= 1 and body["beat"]["alive"] and body

    body = wait_for(healthy, timeout=30, message="health to see worker and beat")
    assert body["status"] == "ok" and body["redis"]["ok"] is True
    assert body["redis"]["latency_ms"] >= 0 and body["version"]
    assert body["beat"]["last_tick_at"].endswith("+00:00")
