"""Request budgets' cost (api_shim/budgets.py): cheap routes through gunicorn with the budgets off,
on (never spent) and spent (every request refused), and the limiter's strategies alone.

Not in the default run (`python -m bench budgets`); its figures are in docs/decisions.md.
The routes: `GET /api/org/{id}/projects` with an API key (the org's budget) and an idle
`GET /api/workers/{id}/poll` with a runtime token (the host's budget). wrk, 32 connections,
against gunicorn's 2 processes x 8 threads; the configurations alternate within each round.
The strategies: `limits`' fixed window, moving window and sliding-window counter, one client
calling `hit` in a loop on the same Redis (every hit accepted): the client's time a hit, Redis's
time a script run (`INFO commandstats`), and the memory a budget's key takes once its
5,000-request window is full.

Alongside requests a second, the CPU each request cost the shim's processes (/proc) and Redis
(`INFO cpu`), which a busy machine disturbs less than it does the rate."""

from __future__ import annotations

import os
import time
from pathlib import Path

import requests

from bench.common import MASTERS, bench_env, client, gunicorn, median, private_redis, quick, wrk

ROUNDS = quick(3, 1)
SECONDS = quick(5, 2)
CONFIGS = {
    "off": {"API_RATE_PER_S": "0", "HOST_RATE_PER_S": "0"},
    # Budgets no run can spend: every request is counted, none refused.
    "on": {
        "API_RATE_PER_S": "1000000",
        "API_BURST": "10000000",
        "HOST_RATE_PER_S": "1000000",
        "HOST_BURST": "10000000",
    },
    # Spent at once: every request after the first is a 429.
    "spent": {
        "API_RATE_PER_S": "0.1",
        "API_BURST": "1",
        "HOST_RATE_PER_S": "0.1",
        "HOST_BURST": "1",
    },
}


def _setup(base: str, r) -> dict[str, str]:
    from dispatchyard.state import apikeys, clock, orgs

    org = orgs.create_org(r, "Bench", f"bench-{time.monotonic_ns()}", clock.now_ms())
    _, key = apikeys.create_key(
        r, org["id"], name="o", role="owner", projects="all", scopes=["*"], now_ms=clock.now_ms()
    )
    h = {"Authorization": f"Bearer {key}"}
    host = requests.post(
        f"{base}/api/workers/register",
        headers=h,
        json={"hostname": "idle", "capacity": 5},
        timeout=10,
    )
    assert host.status_code == 201, host.text
    host_body = host.json()
    return {
        "org_id": org["id"],
        "key": key,
        "worker": host_body["workerId"],
        "token": host_body["runtimeToken"],
    }


def _cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes have used."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _shim_pids(base: str) -> list[int]:
    master = MASTERS[base]
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(p) for p in children]


def _redis_cpu_s(r) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _measure(base: str, r, path: str, token: str) -> dict[str, float]:
    """wrk against `path`: requests a second, and the shim's and Redis's CPU per request."""
    pids = _shim_pids(base)
    shim_before, redis_before = _cpu_s(pids), _redis_cpu_s(r)
    got = wrk(base + path, seconds=SECONDS, header=f"Authorization: Bearer {token}")
    requests_served = got["rps"] * SECONDS
    return {
        "rps": got["rps"],
        "errors": got["errors"],
        "shim_us": (_cpu_s(pids) - shim_before) / requests_served * 1e6,
        "redis_us": (_redis_cpu_s(r) - redis_before) / requests_served * 1e6,
    }


def _http() -> dict[str, dict[str, list[dict[str, float]]]]:
    results: dict[str, dict[str, list[dict[str, float]]]] = {
        c: {"projects": [], "poll": []} for c in CONFIGS
    }
    with private_redis() as (url, _port):
        r = client(url)
        for _ in range(ROUNDS):
            for name, config in CONFIGS.items():
                env = bench_env(url, **{f"DISPATCHYARD_{k}": v for k, v in config.items()})
                with gunicorn(env) as base:
                    ids = _setup(base, r)
                    got = {
                        "projects": _measure(
                            base, r, f"/api/org/{ids['org_id']}/projects", ids["key"]
                        ),
                        "poll": _measure(
                            base, r, f"/api/workers/{ids['worker']}/poll", ids["token"]
                        ),
                    }
                for label, figures in got.items():
                    assert (figures["errors"] > 0) == (name == "spent"), (name, label, figures)
                    results[name][label].append(figures)
    return results


def _in_process() -> dict[str, dict[str, float]]:
    """The CPU one request costs one shim process (Flask's test client, one thread, the same
    Redis), budgets off and on, rounds interleaved: a busy machine barely moves it."""
    import statistics

    from api_shim import create_app
    from dispatchyard.settings import get_settings

    calls, rounds = quick(500, 100), quick(9, 3)
    figures: dict[str, dict[str, list[float]]] = {}
    with private_redis() as (url, _port):
        bench_env(url)
        get_settings.cache_clear()
        r = client(url)
        apps = {}
        for name in ("off", "on"):
            config = {
                k.lower(): int(v) if k.endswith("BURST") else float(v)
                for k, v in CONFIGS[name].items()
            }
            app = create_app(get_settings().model_copy(update=config))
            http = app.test_client()
            from dispatchyard.state import apikeys, clock, orgs

            org = orgs.create_org(r, "Bench", f"bench-{name}", clock.now_ms())
            _, key = apikeys.create_key(
                r,
                org["id"],
                name="o",
                role="owner",
                projects="all",
                scopes=["*"],
                now_ms=clock.now_ms(),
            )
            h = {"Authorization": f"Bearer {key}"}
            host = http.post(
                "/api/workers/register", headers=h, json={"hostname": "h", "capacity": 5}
            )
            token = {"Authorization": f"Bearer {host.get_json()['runtimeToken']}"}
            apps[name] = {
                "projects": (http, f"/api/org/{org['id']}/projects", h),
                "poll": (http, f"/api/workers/{host.get_json()['workerId']}/poll", token),
            }
            figures[name] = {"projects": [], "poll": []}
        for _ in range(rounds):
            for name, routes in apps.items():
                for label, (http, path, headers) in routes.items():
                    started = time.process_time()
                    for _ in range(calls):
                        assert http.get(path, headers=headers).status_code == 200
                    figures[name][label].append((time.process_time() - started) / calls * 1e6)
    return {
        name: {label: statistics.median(v) for label, v in by_route.items()}
        for name, by_route in figures.items()
    }


def _strategies() -> dict[str, dict[str, float]]:
    from limits import RateLimitItemPerSecond
    from limits.storage import RedisStorage
    from limits.strategies import STRATEGIES

    out: dict[str, dict[str, float]] = {}
    calls = quick(20_000, 5_000)
    with private_redis() as (url, _port):
        r = client(url)
        storage = RedisStorage("redis://", connection_pool=r.connection_pool, key_prefix="b")
        item = RateLimitItemPerSecond(5000, 10)  # the org budget's default window
        for name, strategy in STRATEGIES.items():
            limiter = strategy(storage)
            r.config_resetstat()
            started = time.perf_counter()
            for i in range(calls):  # a key per 5,000 hits: every hit is accepted
                assert limiter.hit(item, name, str(i // 5000))
            seconds = time.perf_counter() - started
            key = next(k for k in r.scan_iter(f"b:*{name}/0/*"))
            out[name] = {
                "hits_per_s": round(calls / seconds),
                "us_per_hit": round(seconds / calls * 1e6, 1),
                "redis_us_per_hit": r.info("commandstats")["cmdstat_evalsha"]["usec_per_call"],
                "key_bytes": r.memory_usage(key, samples=0) or 0,
            }
    return out


def run() -> list[dict]:
    results = _http()
    for label in ("projects", "poll"):
        line = []
        for name in CONFIGS:
            runs = results[name][label]
            rps = median([x["rps"] for x in runs])
            shim = median([x["shim_us"] for x in runs])
            redis_us = median([x["redis_us"] for x in runs])
            line.append(
                f"{name}: {rps:,.0f} req/s, CPU a request: shim {shim:,.0f} us, "
                f"Redis {redis_us:,.0f} us"
            )
        print(f"{label}: " + " | ".join(line))
    cpu = _in_process()
    for label in ("projects", "poll"):
        off, on = cpu["off"][label], cpu["on"][label]
        print(
            f"{label}, one process, one thread: CPU {off:,.0f} us a request off, {on:,.0f} us on "
            f"(+{on - off:,.0f} us, {on / off - 1:+.0%})"
        )
    for name, figures in _strategies().items():
        print(f"limits {name}: {figures}")
    return []
