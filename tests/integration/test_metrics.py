"""GET /metrics over HTTP: the shim's counters, the gauges read from Redis, fire lateness, and
(under real gunicorn) the two workers' counts adding up in one scrape."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor

import requests
from prometheus_client.parser import text_string_to_metric_families

from dispatchyard.state import clock, jobs, keys, liveness
from tasks import sweeps
from tests.support import records
from tests.support.mesh_client import MeshPeer
from tests.support.waits import wait_for


def scrape(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape: (sample name, sorted labels) -> value."""
    resp = requests.get(base_url + "/metrics", timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def requests_total(samples, route: str, method: str = "GET", status: str = "200") -> float:
    return value(
        samples,
        "dispatchyard_http_requests_total",
        route=route,
        method=method,
        status=status,
    )


def test_request_counter_and_latency_by_route(api, shim_url, org):
    before = scrape(shim_url)
    for _ in range(3):
        assert api.get("/health").status_code == 200
    created = api.post("/api/org/unknown/projects", org.key, json={})  # a 4xx on a rule
    assert api.get("/no/such/path").status_code == 404
    after = scrape(shim_url)
    assert requests_total(after, "/health") - requests_total(before, "/health") == 3
    rule = "/api/org/<org_id>/projects"
    code = str(created.status_code)
    assert (
        requests_total(after, rule, "POST", code) - requests_total(before, rule, "POST", code) == 1
    )
    unmatched = requests_total(after, "<unmatched>", "GET", "404")
    assert unmatched - requests_total(before, "<unmatched>", "GET", "404") == 1
    # The previous scrape itself was counted too, under its rule.
    assert requests_total(after, "/metrics") >= 1
    count = "dispatchyard_http_request_duration_seconds_count"
    assert value(after, count, route="/health", method="GET") >= 3
    inf = value(
        after,
        "dispatchyard_http_request_duration_seconds_bucket",
        route="/health",
        method="GET",
        le="+Inf",
    )
    assert inf == value(after, count, route="/health", method="GET")


def test_jobs_sessions_and_queue_depth(api, shim_url, org, r):
    before = scrape(shim_url)
    for _ in range(2):
        resp = api.post(
            "/jobs", json={"title": "m", "prompt": "p", "due_at": "2999-01-01T00:00:00+00:00"}
        )
        assert resp.status_code == 200, resp.text
    records.project(api, org)
    for _ in range(3):
        records.enqueue(api, org)
    after = scrape(shim_url)
    queued = value(after, "dispatchyard_jobs", state="queued")
    assert queued - value(before, "dispatchyard_jobs", state="queued") == 2
    assert queued == r.zcard("jobs:state:queued")
    assert value(after, "dispatchyard_sessions", status="queued") == r.zcard("work:queue")
    assert (
        value(after, "dispatchyard_queue_depth", queue="work:queue")
        - value(before, "dispatchyard_queue_depth", queue="work:queue")
        == 3
    )
    assert ("dispatchyard_queue_depth", (("queue", "dispatchyard"),)) in after
    assert value(after, "dispatchyard_queue_depth", queue="dispatchyard") == r.llen("dispatchyard")


def test_mutation_delivery_counted(api, shim_url, org):
    host = records.register(api, org)
    resp = api.post(
        "/api/daemon/mutations",
        org.key,
        json={
            "workerHostId": host["workerId"],
            "op": "project.add",
            "params": {"id": "prj_x", "repository": "github.com/a/x"},
        },
    )
    assert resp.status_code == 201, resp.text
    before = value(scrape(shim_url), "dispatchyard_mutation_deliveries_total")
    beat = api.post(
        f"/api/workers/{host['workerId']}/heartbeat", host["runtimeToken"], json={"activeCount": 0}
    )
    assert len(beat.json()["pendingMutations"]) == 1
    after = scrape(shim_url)
    assert value(after, "dispatchyard_mutation_deliveries_total") - before == 1
    route = "/api/workers/<worker_id>/heartbeat"
    assert requests_total(after, route, "POST") >= 1


def test_websocket_gauge_follows_a_peer(shim_url):
    def connected() -> float:
        return value(scrape(shim_url), "dispatchyard_websocket_connections")

    base = connected()
    peer = MeshPeer(shim_url, "metrics-peer", f"metrics-{secrets.token_hex(3)}")
    try:
        assert connected() == base + 1
    finally:
        peer.close()
    wait_for(lambda: connected() == base, timeout=10, message="gauge back down")


def test_fire_lateness_histogram(api, shim_url, r):
    due_ms = clock.now_ms() + 60_000
    resp = api.post("/jobs", json={"title": "late", "prompt": "p", "due_at": clock.iso(due_ms)})
    job_id = resp.json()["job_id"]
    scrape(shim_url)  # folds whatever came before
    before = scrape(shim_url)
    jobs.acquire(
        r,
        job_id,
        fire_key=f"k-{job_id}",
        why="due",
        now_ms=due_ms + 2_000,
        lease_ms=30_000,
        machine="m",
    )
    after = scrape(shim_url)
    name = "dispatchyard_fire_lateness_seconds"
    assert value(after, f"{name}_count") - value(before, f"{name}_count") == 1
    assert value(after, f"{name}_sum") - value(before, f"{name}_sum") == 2.0
    for le, grew in (("1.0", 0), ("2.5", 1), ("+Inf", 1)):
        assert (
            value(after, f"{name}_bucket", le=le) - value(before, f"{name}_bucket", le=le) == grew
        )
    assert api.post(f"/jobs/{job_id}/cancel", json={}).status_code == 200


def test_host_heartbeat_gauges_follow_a_host_through_offline_and_back(api, shim_url, org, r):
    age, hosts = "dispatchyard_host_heartbeat_age_seconds", "dispatchyard_hosts"
    host = records.register(api, org)
    host_id, token = host["workerId"], host["runtimeToken"]
    assert value(scrape(shim_url), age, host=host_id) < 5
    # Silent past the offline window: the sweep marks it offline and the gauge keeps it, aging,
    # so an alert on the age stays firing until it heartbeats or is deregistered.
    clock.advance(181)
    assert host_id in sweeps.offline_hosts.apply().get()
    silent = scrape(shim_url)
    assert 181 <= value(silent, age, host=host_id) < 190
    assert value(silent, hosts, status="offline") == r.zcard(keys.HOSTS_OFFLINE) >= 1
    assert value(silent, hosts, status="active") == r.zcard(keys.HOST_HEARTBEATS)
    beat = api.post(f"/api/workers/{host_id}/heartbeat", token, json={"activeCount": 0})
    assert beat.status_code == 200, beat.text
    back = scrape(shim_url)
    assert value(back, age, host=host_id) < 5
    assert r.zscore(keys.HOSTS_OFFLINE, host_id) is None
    assert value(back, hosts, status="offline") == value(silent, hosts, status="offline") - 1
    # Deregistered: no series any more.
    assert api.delete(f"/api/workers/{host_id}", org.key).status_code == 200
    gone = scrape(shim_url)
    assert (age, (("host", host_id),)) not in gone


def test_worker_and_beat_gauges(shim_url, r):
    node = f"metrics-probe@{secrets.token_hex(3)}"
    liveness.node_seen(r, "metrics-machine", node, clock.now_ms())
    r.set(keys.BEAT_LAST_TICK, clock.now_ms() - 3_000)
    r.set(keys.BEAT_LOCK, "metrics-test-token", px=60_000)
    try:
        seen = scrape(shim_url)
        assert value(seen, "dispatchyard_workers_online") >= 1
        assert value(seen, "dispatchyard_beat_leader") == 1
        assert 3 <= value(seen, "dispatchyard_beat_last_tick_age_seconds") < 10
        # No leader once the lock is gone; the probe node no longer counts 16 s later.
        r.delete(keys.BEAT_LOCK)
        clock.advance(16)
        later = scrape(shim_url)
        assert value(later, "dispatchyard_beat_leader") == 0
        cutoff = clock.now_ms() - liveness.ALIVE_WITHIN_MS
        assert r.zscore(keys.NODES_ONLINE, node) < cutoff
        assert value(later, "dispatchyard_workers_online") == r.zcount(
            keys.NODES_ONLINE, cutoff, "+inf"
        )
    finally:
        r.delete(keys.BEAT_LOCK, keys.BEAT_LAST_TICK)
        r.zrem(keys.NODES_ONLINE, node)


def test_gunicorn_workers_add_up(tmp_path):
    from tests.support.stack import BIN, Stack

    stack = Stack(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"))
    stack.start(
        "shim",
        [
            str(BIN / "gunicorn"),
            "-c",
            "api_shim/gunicorn_conf.py",
            "api_shim.wsgi:app",
            "--worker-class",
            "gthread",
            "--workers",
            "2",
            "--threads",
            "4",
            "--bind",
            f"127.0.0.1:{stack.port}",
        ],
    )
    try:
        wait_for(stack._healthy, timeout=30, message="gunicorn /health")

        def pids() -> set[str]:
            return {p.stem.split("_")[-1] for p in (tmp_path / "prom").glob("counter_*.db")}

        sent = 0
        with ThreadPoolExecutor(8) as pool:
            while len(pids()) < 2 and sent < 400:  # until both workers have served some
                got = pool.map(lambda _: requests.get(stack.url + "/health", timeout=5), range(20))
                assert [resp.status_code for resp in got] == [200] * 20
                sent += 20
        assert len(pids()) == 2, pids()
        for _ in range(4):  # whichever worker answers, it sums both
            assert requests_total(scrape(stack.url), "/health") >= sent
    finally:
        stack.close()


def test_sessions_by_status_follow_every_move(api, shim_url, org, r):
    """The session scripts keep the counts as sessions move: claimed by a poll, then running
    and completed, the gauges move with them (and `queued` still equals the queue)."""
    records.project(api, org)
    host = records.register(api, org)
    before = scrape(shim_url)
    sids = [records.enqueue(api, org)["sessionId"] for _ in range(2)]
    token = host["runtimeToken"]
    claimed = api.get(f"/api/workers/{host['workerId']}/poll", token).json()["work"]
    assert {w["sessionId"] for w in claimed} == set(sids)
    status = {"workerId": host["workerId"], "status": "running"}
    assert api.post(f"/api/sessions/{sids[0]}/status", token, json=status).status_code == 200
    status["status"] = "completed"
    assert api.post(f"/api/sessions/{sids[0]}/status", token, json=status).status_code == 200
    after = scrape(shim_url)

    def moved(status: str) -> float:
        return value(after, "dispatchyard_sessions", status=status) - value(
            before, "dispatchyard_sessions", status=status
        )

    assert (moved("claimed"), moved("running"), moved("completed")) == (1, 0, 1)
    assert value(after, "dispatchyard_sessions", status="queued") == r.zcard("work:queue")
