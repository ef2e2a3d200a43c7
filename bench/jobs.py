"""Durable jobs against their peers, in one run on this machine:

1. fire overhead: `POST /jobs` of a no-op `shell` job -> its executor started (the shell
   command records the time), against a bare Celery task's enqueue -> start on the same broker
   plus a fork/exec of `true` (bench/celery_peer.py);
2. `POST /jobs` (due later, no fire) requests/s through gunicorn, against repowire 0.17.0;
3. `GET /jobs?view=summary` with 10,000 jobs, against repowire 0.17.0; then with 100,000 (written
   through state/ in pipelines, as POST would take minutes), with the growth of the answering
   shim process's RSS while it streams them;
4. memory: the shim's peak RSS per process while listing, against repowire's; then its RSS
   growth over 100,000 requests (wrk, `GET /jobs?view=summary&limit=20`).
Targets: operations.md's performance table (docs/benchmarks.md copies it).
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
BIG = quick(100_000, 20_000)
REQUESTS = quick(100_000, 10_000)
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


def list_times(
    url: str, view: str, rounds: int = quick(5, 2), expect: int = JOBS
) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(rounds):
        started = time.perf_counter()
        resp = requests.get(url + "/jobs", params={"view": view}, timeout=120)
        times.append(time.perf_counter() - started)
        size = len(resp.content)
        assert len(resp.json()["work"]) >= expect
    return median(times), size


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak(pids: list[int]) -> None:
    """Start the processes' peak RSS (VmHWM) over from their current RSS."""
    for pid in pids:
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/clear_refs").write_text("5")


def fill_state(url: str, n: int) -> None:
    """Write jobs through state/ (as POST /jobs stores them, due later) until `n` exist."""
    from dispatchyard.state import clock, job_shape, jobs, keys

    r = client(url)
    have = r.hlen(keys.JOB_DOCS)
    now = clock.now_ms()
    pipe = r.pipeline(transaction=False)
    for i in range(have, n):
        doc = job_shape.new_doc({}, now - n + i, job_id=f"work-bench{i:010x}")
        doc["title"] = "bench"
        doc["execution"] = {"target": {"path": "/tmp", "backend": "claude-code"}}
        jobs.write_new(pipe, doc, now - n + i, due_ms=None)
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()


def fire_overhead(base: str, r, tmp: Path) -> tuple[list[float], list[float]]:
    """Per fire: the executor started (the worker's `executor_started` trace stage, recorded
    once its process is spawned; a millisecond clock) and the shell's first command ran (`date`
    in it, a nanosecond clock), each from the POST sent, in ms."""
    from dispatchyard.state import clock, keys

    started, ran = [], []
    s = requests.Session()
    for i in range(FIRES):
        out = tmp / f"fire-{time.time_ns()}-{i}"  # unique: rounds must not read old files
        t0 = time.time_ns()
        job_id = s.post(
            base + "/jobs",
            json={
                "title": "noop",
                "prompt": f"date +%s%N > {out}",
                "path": str(tmp),
                "backend": "shell",
            },
            timeout=30,
        ).json()["job_id"]
        deadline = time.monotonic() + 30
        while not (out.exists() and out.read_text().strip()):
            if time.monotonic() > deadline:
                raise RuntimeError("executor did not start")
            time.sleep(0.001)
        ran.append((int(out.read_text()) - t0) / 1e6)
        for raw in r.lrange(keys.trace(job_id), 0, -1):
            stage = json.loads(raw)
            if stage.get("stage") == "executor_started":
                started.append(clock.parse_ms(stage["ts"]) - t0 / 1e6)
    return started, ran


def bare_overhead(r) -> list[float]:
    """The peer: enqueue -> start of the bare task, plus its fork/exec of `true`."""
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
        start, fork_exec = (int(x) for x in value.split())
        lat.append((start - t0 + fork_exec) / 1e6)
    return lat


def requests_served(url: str, n: int) -> int:
    """Drive about `n` requests at `url` with wrk (its duration from a short measured rate);
    how many it answered."""
    probe = wrk(url, seconds=2)
    seconds = max(2, round(n / max(probe["rps"], 1)))
    done = wrk(url, seconds=seconds)
    return int(probe["rps"] * 2 + done["rps"] * seconds)


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
                ours, bare, ran = [], [], []
                for _ in range(2):  # interleaved halves, so drift hits both alike
                    got, shell = fire_overhead(base, r, tmp)
                    ours += got
                    ran += shell
                    bare += bare_overhead(r)
                o50, o99, b50, b99 = pct(ours, 50), pct(ours, 99), pct(bare, 50), pct(bare, 99)
                print(
                    f"fire overhead POST /jobs -> executor started: p50 {o50:.1f} ms, p99 "
                    f"{o99:.1f} ms | bare Celery task enqueue -> start + fork/exec of true: p50 "
                    f"{b50:.1f} ms, p99 {b99:.1f} ms | ratio p50 {o50 / b50:.1f}x (target p50 "
                    "<= 3x the peer, p99 <= 50 ms); the shell's first command ran: p50 "
                    f"{pct(ran, 50):.1f} ms, p99 {pct(ran, 99):.1f} ms"
                )
                SAMPLES["fire overhead (ours)"] = ours
                SAMPLES["bare Celery task + fork/exec of true"] = bare
                rows = [
                    row(
                        "fire overhead: `POST /jobs` (no-op `shell`) → executor started",
                        f"p50 {o50:.1f} ms, p99 {o99:.1f} ms (its shell's first command: p50 "
                        f"{pct(ran, 50):.1f} ms, p99 {pct(ran, 99):.1f} ms)",
                        f"bare Celery task enqueue→start plus a fork/exec of `true`: p50 "
                        f"{b50:.1f} ms, p99 {b99:.1f} ms",
                        f"{o50 / b50:.1f}x",
                        "p50 <= 3x the peer, p99 <= 50 ms",
                        o50 <= 3 * b50 and o99 <= 50,
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
                    f"{median(post_ours) / median(post_rw):.2f} (target >= 5)"
                )
                post_ratio = median(post_ours) / median(post_rw)
                rows.append(
                    row(
                        "`POST /jobs` (due later, no fire)",
                        f"{median(post_ours):,.0f} req/s",
                        f"repowire 0.17.0: {median(post_rw):,.0f} req/s",
                        f"{post_ratio:.2f}",
                        ">= 5x its requests/s",
                        post_ratio >= 5,
                    )
                )
                fill(base, JOBS)
                shim = children(MASTERS[base])
                reset_peak(shim)
                t_sum, size_sum = list_times(base, "summary")
                ours_peak = max(peak_rss_mb([pid]) for pid in shim)
                with repowire(prefill=JOBS) as (rw_url, rw_pid):
                    rw_sum, rw_size = list_times(rw_url, "summary")
                    rw_rss = peak_rss_mb([rw_pid, *children(rw_pid)])
                faster = rw_sum / t_sum
                print(
                    f"GET /jobs?view=summary, >= {JOBS:,} jobs: ours {t_sum * 1000:.0f} ms "
                    f"({size_sum / 1e6:.1f} MB) | repowire {rw_sum * 1000:.0f} ms "
                    f"({rw_size / 1e6:.1f} MB) | {faster:.1f}x faster (target >= 10x)"
                )
                fill_state(url, BIG)
                before = {pid: rss_mb(pid) for pid in shim}
                reset_peak(shim)
                t_big, size_big = list_times(base, "summary", expect=BIG)
                growth = max(peak_rss_mb([pid]) - before[pid] for pid in shim)
                print(
                    f"GET /jobs?view=summary, {BIG:,} jobs: {t_big * 1000:.0f} ms "
                    f"({size_big / 1e6:.1f} MB), shim RSS growth {growth:.1f} MB (target under "
                    "1 s, growth < 50 MB)"
                )
                rows.append(
                    row(
                        f"`GET /jobs?view=summary` with {JOBS:,} and {BIG:,} jobs",
                        f"{JOBS:,}: {t_sum * 1000:,.0f} ms ({size_sum / 1e6:.1f} MB); {BIG:,}: "
                        f"{t_big * 1000:,.0f} ms ({size_big / 1e6:.1f} MB), RSS +{growth:.1f} MB",
                        f"repowire 0.17.0 at {JOBS:,}: {rw_sum * 1000:,.0f} ms "
                        f"({rw_size / 1e6:.1f} MB)",
                        f"{faster:.1f}x faster",
                        ">= 10x faster at 10,000; at 100,000 under 1 s with the shim's RSS growing "
                        "< 50 MB (streamed); `limit`/`cursor` pagination beyond repowire",
                        faster >= 10 and t_big < 1 and growth < 50,
                    )
                )
                # Memory over many requests: every shim process's RSS before and after.
                start_rss = sum(rss_mb(pid) for pid in shim)
                served = requests_served(base + "/jobs?view=summary&limit=20", REQUESTS)
                end_rss = sum(rss_mb(pid) for pid in shim)
                drift = (end_rss - start_rss) / start_rss
                print(
                    f"peak RSS per shim process while listing {JOBS:,}: {ours_peak:.0f} MB | "
                    f"repowire {rw_rss:.0f} MB | ratio {ours_peak / rw_rss:.2f} (target <= 0.5); "
                    f"RSS over {served:,} requests: {start_rss:.0f} -> {end_rss:.0f} MB "
                    f"({drift * 100:+.1f}%, target < 10%)"
                )
                rows.append(
                    row(
                        "memory: shim peak RSS per process while listing; RSS over "
                        f"{served:,} requests",
                        f"{ours_peak:,.0f} MB the largest process; {start_rss:,.0f} -> "
                        f"{end_rss:,.0f} MB ({drift * 100:+.1f}%)",
                        f"repowire 0.17.0 peak while listing: {rw_rss:,.0f} MB",
                        f"{ours_peak / rw_rss:.2f}",
                        "shim peak RSS per process <= half of it; growth < 10% over 100,000 "
                        "requests",
                        ours_peak / rw_rss <= 0.5 and drift < 0.10,
                    )
                )
                return rows
        finally:
            for p in procs:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(30)
            shutil.rmtree(tmp, ignore_errors=True)
