"""Redis at its maxmemory (noeviction): a redis-server of the test's own whose `maxmemory` the
test sets low, and the real shim over HTTP on it. /health and /metrics report the memory
against the limit and /health says `degraded` near it; a write Redis refuses (a Lua script's
first write, a MULTI at EXEC, a task publish) answers 507 with the group's envelope, never 500,
and leaves nothing half written (the whole dataset is the same before and after)."""

from __future__ import annotations

import hashlib
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.serving import make_server

from api_shim import create_app
from dispatchyard.settings import get_settings
from dispatchyard.state import clock, job_shape, jobs, retention
from dispatchyard.state.models import Final, JobState
from tests.support import records
from tests.support.http import Api
from tests.support.redis_server import RedisServer

FULL = "Store full: Redis reached its maxmemory and refuses writes; retry later"


@pytest.fixture(scope="module")
def private(tmp_path_factory):
    """A redis-server of this module's own and the shim served on it."""
    server = RedisServer(tmp_path_factory.mktemp("full") / "redis")
    server.start()
    settings = get_settings().model_copy(update={"redis_url": server.url})
    http = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield server, Api(f"http://127.0.0.1:{http.server_port}")
    http.shutdown()
    server.stop()


@pytest.fixture
def full(private):
    """The private Redis with room for nothing more (reads still answer)."""
    server, api = private
    r = server.client()
    yield r, api
    r.config_set("maxmemory", 0)


def dataset(r) -> str:
    """A digest of every key and value (DUMP), to prove a refused request wrote nothing."""
    digest = hashlib.sha256()
    for key in sorted(r.scan_iter(count=1000)):
        digest.update(key.encode() + b"\0")
        digest.update(r.execute_command("DUMP", key, NEVER_DECODE=True) or b"")
    return digest.hexdigest()


def test_health_and_metrics_report_memory_and_degrade_near_maxmemory(full):
    r, api = full
    body = api.get("/health").json()
    assert body["status"] == "ok" and body["redis"]["maxmemory"] == 0
    assert body["redis"]["used_memory"] > 0 and body["redis"]["memory_used_ratio"] is None
    used = int(r.info("memory")["used_memory"])
    r.config_set("maxmemory", int(used / 0.95))
    resp = api.get("/health")
    body = resp.json()
    assert resp.status_code == 200 and body["status"] == "degraded"
    assert 0.9 <= body["redis"]["memory_used_ratio"] < 1.2
    assert body["redis"]["ok"] is True
    r.config_set("maxmemory", used * 4)
    assert api.get("/health").json()["status"] == "ok"
    gauges = {
        sample.name: sample.value
        for family in text_string_to_metric_families(api.get("/metrics").text)
        for sample in family.samples
    }
    assert gauges["dispatchyard_redis_maxmemory_bytes"] == used * 4
    assert gauges["dispatchyard_redis_used_memory_bytes"] > 0


def test_a_refused_script_answers_507_and_writes_nothing(full):
    r, api = full
    org = records.new_org(r)
    records.project(api, org, "app")
    r.config_set("maxmemory", 1)
    before = dataset(r)
    # Daemon group: registering a peer is one script (its first write is refused).
    resp = api.post("/peers", json={"name": "full-peer", "circle": "c"})
    assert resp.status_code == 507, resp.text
    assert resp.json() == {"detail": FULL} and resp.headers["Retry-After"] == "10"
    # Platform group: its envelope (enqueueing a session is one script; the org's request
    # budget, whose counter Redis refuses too, lets the request through to it).
    body = {"issueId": "i", "issueIdentifier": "E-1", "project": "app", "prompt": "p"}
    resp = api.post("/api/sessions", org.key, json=body)
    assert resp.status_code == 507, resp.text
    assert resp.json() == {"error": FULL}
    assert dataset(r) == before
    # Once memory is there again the same requests go through.
    r.config_set("maxmemory", 0)
    assert api.post("/peers", json={"name": "full-peer", "circle": "c"}).status_code == 200
    assert api.post("/api/sessions", org.key, json=body).status_code == 201


def test_reads_keep_working_while_redis_is_full(full):
    """The request budgets' counters cannot be written either: a full Redis must not turn
    every platform read into a 507 for want of one."""
    r, api = full
    org = records.new_org(r)
    records.project(api, org, "reads")
    r.config_set("maxmemory", 1)
    before = dataset(r)
    listed = api.get(f"/api/org/{org.id}/projects", org.key)
    assert listed.status_code == 200, listed.text
    assert [p["slug"] for p in listed.json()["projects"]] == ["reads"]
    assert api.get("/peers").status_code == 200
    assert dataset(r) == before


def test_a_refused_multi_answers_507_and_writes_nothing(full):
    r, api = full
    r.config_set("maxmemory", 1)
    before = dataset(r)
    # A job is stored by one MULTI (document, summary, scalars, indexes, event, trace).
    resp = api.post(
        "/jobs",
        json={
            "title": "t",
            "prompt": "p",
            "path": "/tmp",
            "backend": "shell",
            "due_at": "2099-01-01T00:00:00Z",
        },
    )
    assert resp.status_code == 507, resp.text
    assert resp.json() == {"detail": FULL}
    assert dataset(r) == before


def oom_refusals(r) -> int:
    return int(r.info("errorstats").get("errorstat_OOM", {}).get("count", 0))


def test_a_refused_task_publish_answers_507(full):
    r, api = full
    doc = job_shape.new_doc({"title": "t", "request": {"prompt": "p"}}, clock.now_ms())
    jobs.create(r, doc, clock.now_ms(), due_ms=None)
    r.config_set("maxmemory", 1)
    before, refused = dataset(r), oom_refusals(r)
    # Running a job reads it and publishes its fire: the publish is the one write, and what
    # Redis refuses.
    resp = api.post(f"/jobs/{doc['job_id']}/run", json={})
    assert resp.status_code == 507, resp.text
    assert resp.json() == {"detail": FULL}
    assert oom_refusals(r) > refused
    assert dataset(r) == before


def test_retention_deletes_while_redis_is_full(full):
    """A deletion's first write is a deletion, which a full Redis accepts: the retention sweep
    frees memory while every other write is refused."""
    r, _ = full
    now = clock.now_ms()
    doc = job_shape.new_doc({"title": "t", "request": {"prompt": "p"}}, now)
    jobs.create(r, doc, now, due_ms=None)
    jobs.end_without_attempt(r, doc["job_id"], state=JobState.COMPLETED, reason="x", now_ms=now)
    r.config_set("maxmemory", 1)
    refused = oom_refusals(r)
    assert retention.sweep(r, Final.JOBS, now, now, 10) == 1
    assert oom_refusals(r) == refused
    assert jobs.get(r, doc["job_id"]) is None and not r.exists(f"job:{doc['job_id']}")
