"""Poll over HTTP through gunicorn, beside a bare route (/health) on the same gunicorn.

wrk drives `GET /api/workers/{id}/poll` with the worker's runtime JWT: once with work queued
(each poll pops and claims up to 5 sessions) and once idle (nothing for the worker). The peer
is `GET /health` (one Redis PING) through the same gunicorn in the same run.
"""

from __future__ import annotations

import requests

from bench.common import (
    bench_env,
    client,
    gunicorn,
    median,
    private_redis,
    quick,
    ratio_line,
    row,
    wrk,
)

ROUNDS = quick(3, 1)
PREFILL = quick(150_000, 20_000)


def run() -> list[dict]:
    with private_redis() as (url, _port):
        env = bench_env(url)
        from dispatchyard.state import apikeys, clock, orgs, sessions

        r = client(url)
        org = orgs.create_org(r, "Bench", "bench-http", clock.now_ms())
        _, key = apikeys.create_key(
            r,
            org["id"],
            name="o",
            role="owner",
            projects="all",
            scopes=["*"],
            now_ms=clock.now_ms(),
        )
        with gunicorn(env) as base:
            h = {"Authorization": f"Bearer {key}"}
            prj = requests.post(
                f"{base}/api/org/{org['id']}/projects",
                headers=h,
                json={"slug": "app", "name": "App"},
                timeout=10,
            ).json()["project"]
            idle_prj = requests.post(
                f"{base}/api/org/{org['id']}/projects",
                headers=h,
                json={"slug": "idle", "name": "Idle"},
                timeout=10,
            ).json()["project"]
            busy = requests.post(
                f"{base}/api/workers/register",
                headers=h,
                json={"hostname": "busy", "capacity": 1_000_000, "projects": [prj["id"]]},
                timeout=10,
            ).json()
            idle = requests.post(
                f"{base}/api/workers/register",
                headers=h,
                json={"hostname": "idle", "capacity": 5, "projects": [idle_prj["id"]]},
                timeout=10,
            ).json()
            pipe = r.pipeline(transaction=False)
            now = clock.now_ms()
            for i in range(PREFILL):
                sessions.enqueue(
                    pipe,
                    org_id=org["id"],
                    project_id=prj["id"],
                    session_id=f"b{i}",
                    payload={
                        "sessionId": f"b{i}",
                        "priority": 3,
                        "prompt": "x" * 300,
                        "queuedAt": now,
                    },
                    record={},
                    now_ms=now,
                )
                if i % 5000 == 4999:
                    pipe.execute()
            pipe.execute()
            results: dict[str, list[dict]] = {"health": [], "busy": [], "idle": []}
            for _ in range(ROUNDS):
                results["health"].append(wrk(f"{base}/health"))
                results["busy"].append(
                    wrk(
                        f"{base}/api/workers/{busy['workerId']}/poll",
                        header=f"Authorization: Bearer {busy['runtimeToken']}",
                    )
                )
                results["idle"].append(
                    wrk(
                        f"{base}/api/workers/{idle['workerId']}/poll",
                        header=f"Authorization: Bearer {idle['runtimeToken']}",
                    )
                )
            claimed = PREFILL - r.zcard(f"work:queue:project:{prj['id']}")
        peer = median([x["rps"] for x in results["health"]])
        out = []
        labels = {
            "busy": "`GET /api/workers/{id}/poll` through gunicorn, claiming 5 a poll",
            "idle": "idle poll",
        }
        for name in ("busy", "idle"):
            rows = results[name]
            assert all(x["errors"] == 0 for x in rows), f"{name}: non-2xx answers"
            print(
                ratio_line(
                    f"poll ({name}) vs /health through gunicorn",
                    median([x["rps"] for x in rows]),
                    peer,
                    "req/s",
                )
                + f" | poll p50 {median([x['p50_ms'] for x in rows]):.2f} ms"
                f" p99 {median([x['p99_ms'] for x in rows]):.2f} ms"
            )
            rps = median([x["rps"] for x in rows])
            p50 = median([x["p50_ms"] for x in rows])
            out.append(
                row(
                    labels[name],
                    f"{rps:,.0f} req/s, p50 {p50:.0f} ms",
                    f"`GET /health`, same gunicorn: {peer:,.0f} req/s",
                    f"{rps / peer:.2f}",
                )
            )
        print(f"  sessions claimed by the busy poller: {claimed:,}")
        return out
