"""Heartbeats with 10 pending mutations across 1,000 hosts: p99 inside the shim, and
heartbeats/s through gunicorn, in one run.

Every host has 10 mutations in flight and the redelivery window is 0 s, so every heartbeat
takes the heavy path: it (re)delivers 10 mutations, stamps each, appends 10 audit entries and
returns them. "Inside the shim" is the WSGI app's own time per request (Flask's test client,
no network, one request at a time); throughput is wrk through gunicorn (2 workers x 8 threads)
with the same hosts in rotation. The peer is GET /health through the same gunicorn. The shim's
CPU time per heartbeat (its worker processes' user + system time over the wrk run, divided by
the heartbeats answered) gives the hosts one shim core carries at a 30 s interval (README,
docs/capacity.md).
Targets: operations.md's performance table (docs/benchmarks.md copies it).
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import (
    MASTERS,
    bench_env,
    client,
    cpu_s,
    gunicorn,
    median,
    private_redis,
    quick,
    ratio_line,
    row,
    wrk,
)

HOSTS = quick(1000, 200)
MUTATIONS = 10
ROUNDS = quick(3, 1)

WRK_SCRIPT = """
local hosts = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do
    local id, token = line:match("(%S+) (%S+)")
    hosts[#hosts + 1] = {id, token}
  end
  i = math.random(#hosts)
end
request = function()
  i = i % #hosts + 1
  local h = hosts[i]
  return wrk.format("POST", "/api/workers/" .. h[1] .. "/heartbeat",
    {["Authorization"] = "Bearer " .. h[2], ["Content-Type"] = "application/json"},
    '{"activeCount": 1, "status": "busy", "load": {"cpu": 20, "memory": 30}}')
end
"""


def _setup(
    url: str, hosts_n: int = HOSTS, mutations: int = MUTATIONS
) -> tuple[list[tuple[str, str]], str]:
    """`hosts_n` hosts of a new org, each with `mutations` pending: [(host id, token)]."""
    from api_shim import tokens
    from dispatchyard.settings import get_settings
    from dispatchyard.state import clock, orgs
    from dispatchyard.state import hosts as host_state
    from dispatchyard.state import mutations as mutation_state

    r = client(url)
    org = orgs.create_org(r, "Bench", f"bench-hb-{time.time_ns()}", clock.now_ms())
    hosts = []
    for i in range(hosts_n):
        w = host_state.register(
            r,
            org["id"],
            hostname=f"h{i}",
            capacity=4,
            version=None,
            projects="all",
            machine_id=None,
            region=None,
            reg_key_id="bench",
            now_ms=clock.now_ms(),
        )
        for _ in range(mutations):
            mutation_state.enqueue(
                r,
                org_id=org["id"],
                host_id=w["id"],
                op="project.add",
                params={"id": "prj_bench", "repository": "github.com/acme/bench"},
                requested_by="key_bench",
                now_ms=clock.now_ms(),
            )
        token, _ = tokens.mint(get_settings(), {**w, "projects_list": "all"})
        hosts.append((w["id"], token))
    return hosts, org["id"]


def _inside(hosts: list[tuple[str, str]]) -> list[float]:
    from api_shim import create_app

    app = create_app()
    c = app.test_client()
    body = {"activeCount": 1, "status": "busy", "load": {"cpu": 20, "memory": 30}}
    times = []
    for wid, token in hosts:
        started = time.perf_counter()
        resp = c.post(
            f"/api/workers/{wid}/heartbeat",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        times.append((time.perf_counter() - started) * 1000)
        assert resp.status_code == 200 and len(resp.json["pendingMutations"]) == MUTATIONS
    return times


def run() -> list[dict]:
    with private_redis() as (url, _port):
        env = bench_env(
            url,
            DISPATCHYARD_MUTATION_REDELIVER_AFTER_S="0",
            DISPATCHYARD_MUTATION_MAX_DELIVERIES="1000000000",
        )
        hosts, _ = _setup(url)
        p99s, p50s = [], []
        for _ in range(ROUNDS):
            times = _inside(hosts)
            p50s.append(statistics.median(times))
            p99s.append(statistics.quantiles(times, n=100)[98])
        print(
            f"heartbeat inside the shim (10 mutations each, {HOSTS} hosts): "
            f"p50 {median(p50s):.2f} ms, p99 {median(p99s):.2f} ms (target p99 <= 5 ms)"
        )
        lua = Path(tempfile.mkdtemp()) / "heartbeat.lua"
        lua.write_text(WRK_SCRIPT)
        hosts_file = lua.with_name("hosts.txt")
        hosts_file.write_text("".join(f"{wid} {token}\n" for wid, token in hosts))
        with gunicorn(env) as base:
            shim = [
                int(p)
                for p in subprocess.run(
                    ["pgrep", "-P", str(MASTERS[base])], capture_output=True, text=True
                ).stdout.split()
            ]
            beats, health, per_beat = [], [], []
            for _ in range(ROUNDS):
                health.append(wrk(f"{base}/health"))
                used = cpu_s(shim)
                beats.append(wrk(base, script=str(lua), script_args=[str(hosts_file)]))
                seconds = quick(8, 2)
                per_beat.append((cpu_s(shim) - used) / (beats[-1]["rps"] * seconds))
        assert all(x["errors"] == 0 for x in beats), "non-2xx heartbeat answers"
        rps, peer = median([x["rps"] for x in beats]), median([x["rps"] for x in health])
        cpu_ms = median(per_beat) * 1000
        hosts_per_core = 30 / median(per_beat)
        print(
            ratio_line(
                "heartbeats through gunicorn vs /health",
                rps,
                peer,
                "req/s",
                ">= 80% of the bare route's requests/s",
            )
            + f" | p50 {median([x['p50_ms'] for x in beats]):.1f} ms"
            f" p99 {median([x['p99_ms'] for x in beats]):.1f} ms (wrk, 32 connections)"
            f" | shim CPU {cpu_ms:.2f} ms a heartbeat: {hosts_per_core:,.0f} hosts per shim core"
            " at a 30 s interval"
        )
        return [
            row(
                f"heartbeat with {MUTATIONS} pending mutations, {HOSTS:,} hosts: inside the shim; "
                "through gunicorn (wrk, 32 connections)",
                f"p99 {median(p99s):.2f} ms inside (p50 {median(p50s):.2f}); {rps:,.0f} "
                f"heartbeats/s through gunicorn; shim CPU {cpu_ms:.2f} ms a heartbeat = "
                f"{hosts_per_core:,.0f} hosts per shim core at 30 s",
                f"bare `GET /health`, same gunicorn: {peer:,.0f} req/s",
                f"{rps / peer:.2f}",
                "p99 <= 5 ms inside the shim; heartbeats/s >= 80% of the bare route's "
                "requests/s; README states hosts per shim core at a 30 s interval",
                median(p99s) <= 5 and rps / peer >= 0.8,
            ),
        ]
