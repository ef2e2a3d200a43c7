"""Durable jobs against their peers, in one run on this machine:

1. fire overhead: `POST /jobs` of a no-op `shell` job -> its executor started (the shell
   command records the time), against a bare Celery task's enqueue -> start on the same broker;
2. `POST /jobs` (due later, no fire) requests/s through gunicorn, against repowire 0.17.0;
3. `GET /jobs?view=summary` with 10,000 jobs, against repowire 0.17.0; summary vs full size;
4. peak RSS of the shim while listing, against repowire's.
Targets (docs/benchmarks.md): fire p50 <= 25 ms, p99 <= 100 ms; list >= 5x faster; summary <= 1/4
of full; POST >= 1.5x; shim RSS <= half of repowire's.
repowire 0.17.0 is the project's test dependency, run from the project's venv with a
throwaway HOME and no hooks installed (as bench/mesh.py runs it). Its 10,000 jobs
for the list benchmark are written with its own store class before it starts: through its
HTTP API each POST also wakes its runner, which walks every queued job, so filling it that way
takes many minutes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench.common import (
    BIN,
    MASTERS,
    ROOT,
    SAMPLES,
    bench_env,
    client,
    gunicorn,
    median,
    private_redis,
    quick,
    row,
    wrk,
)
from dispatchyard.cli.devstack import free_port

JOBS = quick(10_000, 2_000)
FIRES = quick(200, 40)
ROUNDS = quick(3, 1)
LATER = "2999-01-01T00:00:00+00:00"
POST_BODY = {
    "title": "bench",
    "prompt": "summarize the repo and list the open questions",
    "path": "/tmp",
    "backend": "claude-code",
    "due_at": LATER,
    "owner_peer_id": "bench",
    "circle": "global",
}
POST_SCRIPT = f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{json.dumps(POST_BODY)}'
"""


def repowire_bin() -> Path:
    """repowire 0.17.0, the project's test dependency, from this venv."""
    exe = BIN / "repowire"
    if not exe.exists():
        raise RuntimeError("repowire is missing: pip install -e '.[test]' (make bench does it)")
    return exe


FILL_REPOWIRE = """
import sys
from pathlib import Path
from repowire.daemon.state.database import StateDatabase
from repowire.daemon.state.work import SQLiteWorkStore

store = SQLiteWorkStore(StateDatabase(Path(sys.argv[1]) / ".repowire" / "state.db"))
execution = {"prompt": {"body": "p" * 60, "source": "inline"},
             "target": {"path": "/tmp", "backend": "claude-code"},
             "schedule": {"due_at": "2999-01-01T00:00:00+00:00"}, "delivery": {"kind": "ask"},
             "process_scope": "per_fire", "continuity": "fresh"}
for _ in range(int(sys.argv[2])):
    store.create(title="bench", owner_peer_id="bench", circle="global",
                 request={"execution": execution})
"""


@contextlib.contextmanager
def repowire(prefill: int = 0):
    home = tempfile.mkdtemp(prefix="repowire-home-")
    if prefill:
        (Path(home) / ".repowire").mkdir()
        subprocess.run([sys.executable, "-c", FILL_REPOWIRE, home, str(prefill)], check=True)
    port = free_port()
    proc = subprocess.Popen(
        [str(repowire_bin()), "serve", "--no-install-hooks", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "HOME": home, "REPOWIRE_DISABLE_HOOK_INSTALL": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(url + "/health", timeout=1).ok:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("repowire did not start")
        time.sleep(0.2)
    try:
        yield url, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        shutil.rmtree(home, ignore_errors=True)


def peak_rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total / 1024


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def fill(url: str, n: int) -> None:
    """POST jobs (due later) until at least `n` exist."""
    have = len(requests.get(url + "/jobs", params={"view": "summary"}, timeout=60).json()["work"])
    s = requests.Session()
    body = {
        "title": "bench",
        "prompt": "p" * 60,
        "path": "/tmp",
        "backend": "claude-code",
        "due_at": LATER,
        "owner_peer_id": "bench",
        "circle": "global",
    }
    for _ in range(n - have):
        s.post(url + "/jobs", json=body, timeout=30).raise_for_status()


def list_times(url: str, view: str, rounds: int = quick(5, 2)) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(rounds):
        started = time.perf_counter()
        resp = requests.get(url + "/jobs", params={"view": view}, timeout=120)
        times.append(time.perf_counter() - started)
        size = len(resp.content)
        assert len(resp.json()["work"]) >= JOBS
    return median(times), size


def fire_overhead(base: str, r, tmp: Path) -> list[float]:
    lat = []
    s = requests.Session()
    for i in range(FIRES):
        out = tmp / f"fire-{time.time_ns()}-{i}"  # unique: rounds must not read old files
        t0 = time.time_ns()
        s.post(
            base + "/jobs",
            json={
                "title": "noop",
                "prompt": f"date +%s%N > {out}",
                "path": str(tmp),
                "backend": "shell",
            },
            timeout=30,
        )
        deadline = time.monotonic() + 30
        while not (out.exists() and out.read_text().strip()):
            if time.monotonic() > deadline:
                raise RuntimeError("executor did not start")
            time.sleep(0.001)
        lat.append((int(out.read_text()) - t0) / 1e6)
    return lat


def bare_overhead(r) -> list[float]:
    from bench.celery_peer import started

    lat = []
    for i in range(FIRES):
        token = f"{time.time_ns()}-{i}"
        t0 = time.time_ns()
        started.apply_async((token,))
        deadline = time.monotonic() + 30
        while (value := r.get(f"bench:bare:{token}")) is None:
            if time.monotonic() > deadline:
                raise RuntimeError("bare task did not start")
            time.sleep(0.0005)
        lat.append((int(value) - t0) / 1e6)
    return lat


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1]


def run() -> list[dict]:
    with private_redis() as (url, _port):
        env = bench_env(url, DISPATCHYARD_MACHINE="bench-host")
        r = client(url)
        tmp = Path(tempfile.mkdtemp(prefix="dispatchyard-bench-fires-"))
        procs = [
            subprocess.Popen(
                [
                    str(BIN / "celery"),
                    "-A",
                    "workers",
                    "worker",
                    "--loglevel",
                    "WARNING",
                    "--concurrency",
                    "2",
                ],
                cwd=ROOT,
                env=env,
                start_new_session=True,
            ),
            subprocess.Popen(
                [
                    str(BIN / "celery"),
                    "-A",
                    "bench.celery_peer",
                    "worker",
                    "--loglevel",
                    "WARNING",
                    "--concurrency",
                    "2",
                    "-Q",
                    "bare",
                ],
                cwd=ROOT,
                env=env,
                start_new_session=True,
            ),
        ]
        try:
            with gunicorn(env) as base:
                time.sleep(3)  # let both workers connect before timing anything
                ours, bare = [], []
                for _ in range(2):  # interleaved halves, so drift hits both alike
                    ours += fire_overhead(base, r, tmp)
                    bare += bare_overhead(r)
                print(
                    f"fire overhead POST /jobs -> executor started: p50 {pct(ours, 50):.1f} ms, "
                    f"p99 {pct(ours, 99):.1f} ms | bare Celery task enqueue -> start: "
                    f"p50 {pct(bare, 50):.1f} ms, p99 {pct(bare, 99):.1f} ms | ratio p50 "
                    f"{pct(ours, 50) / pct(bare, 50):.1f}x (target p50 <= 25 ms, p99 <= 100 ms)"
                )
                SAMPLES["fire overhead (ours)"] = ours
                SAMPLES["bare Celery task"] = bare
                rows = [
                    row(
                        "fire overhead: `POST /jobs` (no-op `shell`) -> executor started",
                        f"p50 {pct(ours, 50):.1f} ms, p99 {pct(ours, 99):.1f} ms",
                        f"bare Celery task enqueue -> start: p50 {pct(bare, 50):.1f} ms, "
                        f"p99 {pct(bare, 99):.1f} ms",
                        f"{pct(ours, 50) / pct(bare, 50):.1f}x",
                        "p50 <= 25 ms, p99 <= 100 ms",
                        pct(ours, 50) <= 25 and pct(ours, 99) <= 100,
                    )
                ]
                script = tmp / "post.lua"
                script.write_text(POST_SCRIPT)
                post_ours, post_rw = [], []
                with repowire() as (rw_url, _):
                    for _ in range(ROUNDS):
                        post_ours.append(wrk(base + "/jobs", seconds=2, script=str(script))["rps"])
                        post_rw.append(wrk(rw_url + "/jobs", seconds=2, script=str(script))["rps"])
                print(
                    f"POST /jobs (due later): ours {median(post_ours):,.0f} req/s | repowire "
                    f"{median(post_rw):,.0f} req/s | ratio "
                    f"{median(post_ours) / median(post_rw):.2f} (target >= 1.5)"
                )
                post_ratio = median(post_ours) / median(post_rw)
                rows.append(
                    row(
                        "`POST /jobs` (due later)",
                        f"{median(post_ours):,.0f} req/s",
                        f"repowire 0.17.0: {median(post_rw):,.0f} req/s",
                        f"{post_ratio:.2f}",
                        ">= 1.5",
                        post_ratio >= 1.5,
                    )
                )
                fill(base, JOBS)
                t_sum, size_sum = list_times(base, "summary")
                t_full, size_full = list_times(base, "full")
                with repowire(prefill=JOBS) as (rw_url, rw_pid):
                    rw_sum, rw_size = list_times(rw_url, "summary")
                    rw_rss = peak_rss_mb([rw_pid, *children(rw_pid)])
                print(
                    f"GET /jobs?view=summary, >= {JOBS:,} jobs: ours {t_sum * 1000:.0f} ms "
                    f"({size_sum / 1e6:.1f} MB) | repowire {rw_sum * 1000:.0f} ms "
                    f"({rw_size / 1e6:.1f} MB) | ratio {rw_sum / t_sum:.1f}x faster "
                    f"(target >= 5x)"
                )
                print(
                    f"summary vs full (ours): {size_sum / 1e6:.1f} MB vs {size_full / 1e6:.1f} "
                    f"MB = {size_sum / size_full:.2f} (target <= 0.25); full view "
                    f"{t_full * 1000:.0f} ms"
                )
                shim = children(MASTERS[base])
                ours_rss = peak_rss_mb(shim)
                per_worker = max(peak_rss_mb([pid]) for pid in shim)
                print(
                    f"peak RSS while listing: shim {len(shim)} workers {ours_rss:.0f} MB (largest "
                    f"{per_worker:.0f} MB) | repowire {rw_rss:.0f} MB | ratio "
                    f"{ours_rss / rw_rss:.2f}, per worker {per_worker / rw_rss:.2f} (target <= 0.5)"
                )
                rows += [
                    row(
                        f"`GET /jobs?view=summary`, {JOBS:,} jobs",
                        f"{t_sum * 1000:,.0f} ms ({size_sum / 1e6:.1f} MB)",
                        f"repowire 0.17.0: {rw_sum * 1000:,.0f} ms ({rw_size / 1e6:.1f} MB)",
                        f"{rw_sum / t_sum:.1f}x faster",
                        ">= 5x",
                        rw_sum / t_sum >= 5,
                    ),
                    row(
                        "summary vs full size (those jobs: never fired, 60-char prompts)",
                        f"{size_sum / 1e6:.1f} MB vs {size_full / 1e6:.1f} MB",
                        ratio=f"{size_sum / size_full:.2f}",
                        target="<= 0.25",
                        met=size_sum / size_full <= 0.25,
                    ),
                    row(
                        "peak RSS while listing",
                        f"{ours_rss:,.0f} MB for {len(shim)} workers ({per_worker:,.0f} MB the "
                        "largest)",
                        f"repowire 0.17.0: {rw_rss:,.0f} MB",
                        f"{ours_rss / rw_rss:.2f} ({per_worker / rw_rss:.2f} per worker)",
                        "<= 0.5",
                        ours_rss / rw_rss <= 0.5,
                    ),
                ]
                return rows
        finally:
            for p in procs:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(30)
            shutil.rmtree(tmp, ignore_errors=True)
