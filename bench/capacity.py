"""The capacity model's measurements (docs/capacity.md): per operation, the Redis commands it
costs (`INFO commandstats` deltas), Redis CPU (`INFO cpu` deltas: Redis runs its commands on one
core), and the CPU of the shim's gunicorn workers, the Celery worker (main process and pool) and
beat (`/proc/<pid>/stat` user + system deltas), each over a run of that operation alone:

- heartbeat (no mutations pending), idle poll: sequential requests through gunicorn;
- ask round trip: one pair of live sockets in a loop (bench/round_trip.py);
- fire: `POST /jobs` of a `shell` job running `true`, all of them run to the end;
- template tick: templates due in one minute, materialized by the real beat and worker (each
  child then fires; templates with no target end `unavailable` at once, so the fire is cheap).

From them, what one shim core, one worker core and one Redis primary carry; then one mixed run
(all of the above at once) checks the model: the CPU it predicts from the counts of each
operation beside the CPU measured. The figures go into docs/benchmarks.md and, between its
markers, into docs/capacity.md.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import redis
import requests

from bench import heartbeat, round_trip
from bench.common import (
    BIN,
    MASTERS,
    ROOT,
    SECTIONS,
    bench_env,
    client,
    cpu_s,
    gunicorn,
    private_redis,
    quick,
    row,
)

BEATS = quick(3000, 400)
POLLS = quick(3000, 400)
TRIPS = quick(600, 100)
FIRES = quick(200, 40)
TEMPLATES = quick(1000, 200)
MIXED_S = quick(20, 6)
CAPACITY = ROOT / "docs" / "capacity.md"
MARK_START, MARK_END = "<!-- measured: bench/capacity.py -->", "<!-- /measured -->"


def tree(pid: int) -> list[int]:
    """The process and its children (gunicorn's workers, Celery's pool); not grandchildren
    (a worker's executors are the jobs' own processes)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [pid, *(int(p) for p in out.split())]


class Meter:
    """CPU and Redis counters of the stack, read before and after a run."""

    def __init__(self, r: redis.Redis, shim: list[int], worker: list[int], beat: list[int]):
        self.r, self.parts = r, {"shim": shim, "worker": worker, "beat": beat}

    def read(self) -> dict[str, float]:
        info = self.r.info("commandstats")
        cpu = self.r.info("cpu")
        out = {
            "redis_calls": sum(v["calls"] for k, v in info.items() if k != "cmdstat_info"),
            "redis_cpu": cpu["used_cpu_user"] + cpu["used_cpu_sys"],
        }
        for name, pids in self.parts.items():
            out[name] = cpu_s(pids)
        return out

    def span(self, action: Any) -> tuple[dict[str, float], Any]:
        before = self.read()
        result = action()
        after = self.read()
        return {k: after[k] - before[k] for k in before}, result


def heartbeats(base: str, hosts: list[tuple[str, str]], n: int) -> int:
    http = requests.Session()
    body = {"activeCount": 0, "status": "idle", "load": {"cpu": 5, "memory": 20}}
    for i in range(n):
        wid, token = hosts[i % len(hosts)]
        http.post(
            f"{base}/api/workers/{wid}/heartbeat",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).raise_for_status()
    return n


def polls(base: str, hosts: list[tuple[str, str]], n: int) -> int:
    http = requests.Session()
    for i in range(n):
        wid, token = hosts[i % len(hosts)]
        http.get(
            f"{base}/api/workers/{wid}/poll",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).raise_for_status()
    return n


def fires(base: str, r: redis.Redis, n: int, tmp: str) -> int:
    from dispatchyard.state import keys

    http = requests.Session()
    ids = []
    for _ in range(n):
        body = {"title": "cap", "prompt": "true", "path": tmp, "backend": "shell"}
        answer = http.post(base + "/jobs", json=body, timeout=10)
        answer.raise_for_status()
        ids.append(answer.json()["job_id"])
    deadline = time.monotonic() + 120
    while True:
        states = r.hmget(keys.JOB_DOCS, ids)
        if all(s and '"state":"completed"' in s.replace(" ", "") for s in states):
            return n
        if time.monotonic() > deadline:
            raise RuntimeError("fires did not complete")
        time.sleep(0.05)


def templates_due(url: str, r: redis.Redis, n: int) -> int:
    """`n` templates due within the next minute; returns when all their children exist."""
    from dispatchyard.state import clock, keys, template_rules
    from dispatchyard.state import templates as template_state

    had = r.hlen(keys.JOB_DOCS)
    now = clock.now_ms()
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        doc = template_rules.new_doc({"title": f"cap{i}", "cron": "* * * * *"}, now)
        template_state.write(pipe, doc, now)
    pipe.execute()
    deadline = time.monotonic() + 150
    while r.hlen(keys.JOB_DOCS) - had < n:
        if time.monotonic() > deadline:
            raise RuntimeError("templates were not materialized")
        time.sleep(0.1)
    # Stop the templates, so later runs do not pay for their next minute.
    for template_id in r.zrange(keys.TEMPLATES_DUE, 0, -1):
        r.zrem(keys.TEMPLATES_DUE, template_id)
    return n


def per_op(delta: dict[str, float], n: int) -> dict[str, float]:
    return {
        "redis_calls": delta["redis_calls"] / n,
        "redis_ms": delta["redis_cpu"] * 1000 / n,
        "shim_ms": delta["shim"] * 1000 / n,
        "worker_ms": (delta["worker"] + delta["beat"]) * 1000 / n,
    }


def table(costs: dict[str, dict[str, float]]) -> str:
    lines = [
        "| operation | Redis commands | Redis CPU ms | shim CPU ms | worker + beat CPU ms |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, c in costs.items():
        lines.append(
            f"| {name} | {c['redis_calls']:.1f} | {c['redis_ms']:.3f} | {c['shim_ms']:.3f} "
            f"| {c['worker_ms']:.3f} |"
        )
    return "\n".join(lines)


def limits(costs: dict[str, dict[str, float]]) -> str:
    hb, poll, rt = costs["heartbeat"], costs["idle poll"], costs["ask round trip"]
    fire, tick = costs["fire"], costs["template tick"]

    def per(ms: float, scale: float) -> str:
        return f"{scale * 1000 / ms:,.0f}" if ms > 0 else "∞"

    rows = [
        ("hosts at a 30 s heartbeat", per(hb["shim_ms"], 30), "—", per(hb["redis_ms"], 30)),
        ("idle polls per second", per(poll["shim_ms"], 1), "—", per(poll["redis_ms"], 1)),
        ("ask round trips per second", per(rt["shim_ms"], 1), "—", per(rt["redis_ms"], 1)),
        (
            "fires per minute",
            per(fire["shim_ms"], 60),
            per(fire["worker_ms"], 60),
            per(fire["redis_ms"], 60),
        ),
        (
            "template fires per minute (materialized and fired)",
            "—",
            per(tick["worker_ms"], 60),
            per(tick["redis_ms"], 60),
        ),
    ]
    lines = [
        "| load | one shim core | one worker core | one Redis primary |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def mixed(
    base: str, hosts: list[tuple[str, str]], meter: Meter, costs: dict
) -> tuple[str, dict[str, float]]:
    """Heartbeats, polls, a round-trip pair and fires at once for MIXED_S seconds: the CPU the
    model predicts from the counts beside the CPU measured."""
    counts = {"heartbeat": 0, "idle poll": 0, "ask round trip": 0, "fire": 0}
    stop = threading.Event()
    tmp = str(Path(ROOT / "var").resolve())

    def loop(name: str, once: Any) -> None:
        while not stop.is_set():
            counts[name] += once()

    actions = {
        "heartbeat": lambda: heartbeats(base, hosts, 20),
        "idle poll": lambda: polls(base, hosts, 20),
        "ask round trip": lambda: len(round_trip.drive(base, 200, warmup=0).latencies_ms),
        "fire": lambda: fires(base, meter.r, 5, tmp),
    }

    def run() -> None:
        threads = [threading.Thread(target=loop, args=item) for item in actions.items()]
        for t in threads:
            t.start()
        time.sleep(MIXED_S)  # a benchmark runs for a fixed wall time; not a test
        stop.set()
        for t in threads:
            t.join()

    delta, _ = meter.span(run)
    predicted = {
        "shim": sum(counts[k] * costs[k]["shim_ms"] for k in counts) / 1000,
        "Redis": sum(counts[k] * costs[k]["redis_ms"] for k in counts) / 1000,
        "worker + beat": sum(counts[k] * costs[k]["worker_ms"] for k in counts) / 1000,
    }
    measured = {
        "shim": delta["shim"],
        "Redis": delta["redis_cpu"],
        "worker + beat": delta["worker"] + delta["beat"],
    }
    done = ", ".join(f"{n:,} {k}s" for k, n in counts.items())
    lines = [
        f"Mixed run, {MIXED_S} s at once: {done}.",
        "",
        "| process | CPU s predicted by the model | CPU s measured | measured / predicted |",
        "| --- | --- | --- | --- |",
    ]
    for k in predicted:
        ratio = measured[k] / predicted[k] if predicted[k] else float("nan")
        lines.append(f"| {k} | {predicted[k]:.2f} | {measured[k]:.2f} | {ratio:.2f} |")
    ratios = {k: measured[k] / predicted[k] for k in predicted if predicted[k]}
    return "\n".join(lines), ratios


def write_capacity(section: str) -> None:
    """Put the measured block into docs/capacity.md between its markers."""
    if not CAPACITY.exists():
        return
    text = CAPACITY.read_text()
    pattern = re.compile(re.escape(MARK_START) + ".*?" + re.escape(MARK_END), re.S)
    block = f"{MARK_START}\n{section}\n{MARK_END}"
    CAPACITY.write_text(pattern.sub(lambda _: block, text))


def run() -> list[dict]:
    with private_redis() as (url, _port):
        env = bench_env(url, DISPATCHYARD_MACHINE="cap-host", DISPATCHYARD_HOP_STAMPS="0")
        r = client(url)
        Path(ROOT / "var").mkdir(exist_ok=True)
        tmp = str((ROOT / "var").resolve())
        celery = [str(BIN / "celery"), "-A", "workers"]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        worker = subprocess.Popen(
            [*celery, "worker", "--loglevel", "WARNING", "--concurrency", "2"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            **quiet,
        )
        beat = subprocess.Popen(
            [*celery, "beat", "--loglevel", "WARNING"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            **quiet,
        )
        try:
            with gunicorn(env) as base:
                time.sleep(3)  # let the worker's pool and beat come up before counting
                hosts, _ = heartbeat._setup(url, hosts_n=200, mutations=0)
                meter = Meter(r, tree(MASTERS[base])[1:], tree(worker.pid), tree(beat.pid))
                costs: dict[str, dict[str, float]] = {}
                runs = {
                    "heartbeat": lambda: heartbeats(base, hosts, BEATS),
                    "idle poll": lambda: polls(base, hosts, POLLS),
                    "ask round trip": lambda: len(round_trip.drive(base, TRIPS).latencies_ms),
                    "fire": lambda: fires(base, r, FIRES, tmp),
                    "template tick": lambda: templates_due(url, r, TEMPLATES),
                }
                for name, action in runs.items():
                    delta, n = meter.span(action)
                    costs[name] = per_op(delta, n)
                    c = costs[name]
                    print(
                        f"  {name}: {c['redis_calls']:.1f} Redis commands, Redis CPU "
                        f"{c['redis_ms']:.3f} ms, shim CPU {c['shim_ms']:.3f} ms, worker + beat "
                        f"CPU {c['worker_ms']:.3f} ms (n={n:,})"
                    )
                check, ratios = mixed(base, hosts, meter, costs)
                print("  " + check.replace("\n", "\n  "))
        finally:
            for p in (worker, beat):
                os.killpg(p.pid, 15)
                p.wait(30)
    section = (
        "Per operation (each measured alone; CPU in ms of one core; the stack idles between "
        "operations, so beat's ticks and the renewals are spread over the counts):\n\n"
        + table(costs)
        + "\n\nWhat one core of each carries, from these costs alone:\n\n"
        + limits(costs)
        + "\n\n"
        + check
    )
    SECTIONS.append("Capacity (bench/capacity.py; read with docs/capacity.md):\n\n" + section)
    write_capacity(section)
    worst = max((abs(v - 1) for v in ratios.values()), default=1.0)
    return [
        row(
            "capacity: Redis commands and shim/worker CPU per heartbeat, poll, ask round trip, "
            "fire and template tick; checked against a mixed run",
            "; ".join(
                f"{k}: {c['redis_calls']:.0f} cmds, shim {c['shim_ms']:.2f} ms, worker "
                f"{c['worker_ms']:.2f} ms"
                for k, c in costs.items()
            ),
            "mixed run, measured / predicted CPU: "
            + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()),
            "—",
            "`docs/capacity.md`: Redis commands and shim/worker CPU per heartbeat, poll, ask "
            "round trip, fire and template tick, measured; from them the fleet one shim core, "
            "one worker core and one Redis primary carry, and the plan past one primary",
            CAPACITY.exists() and worst <= 0.35,
        )
    ]
