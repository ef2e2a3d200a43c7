"""Shared bench plumbing: a private redis-server, the real shim under gunicorn, wrk, medians,
the rows each benchmark returns for the report (`bench/report.py`), and the quick mode.

`BENCH_QUICK=1` runs every benchmark with fewer rounds, samples and seconds (`quick(full,
small)` picks the figure): it checks the pipeline end to end in a few minutes; its figures are
not comparable with a full run's."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
import requests

from dispatchyard.cli.devstack import free_port, start_redis

ROOT = Path(__file__).resolve().parents[1]
MASTERS: dict[str, int] = {}  # shim URL -> gunicorn master pid
BIN = Path(sys.executable).parent
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
# Raw samples for the report's plots, by name (ms): filled by the benchmarks that have them.
SAMPLES: dict[str, list[float]] = {}
# Markdown sections a benchmark adds to the report below the table (the hop table).
SECTIONS: list[str] = []


def quick(full: Any, small: Any) -> Any:
    """`small` under BENCH_QUICK=1, else `full`."""
    return small if QUICK else full


def row(
    benchmark: str,
    ours: str,
    peer: str = "—",
    ratio: str = "—",
    target: str = "—",
    met: bool | None = None,
) -> dict:
    """One line of the report's table: the figures as they should be shown, and whether the
    target was met (None: no target)."""
    return {
        "benchmark": benchmark,
        "ours": ours,
        "peer": peer,
        "ratio": ratio,
        "target": target,
        "met": met,
    }


@contextlib.contextmanager
def private_redis() -> Iterator[tuple[str, int]]:
    """A throwaway redis-server (no persistence) on a free port: (url, port)."""
    tmp = Path(tempfile.mkdtemp(prefix="dispatchyard-bench-"))
    port = free_port()
    proc = start_redis(port, tmp, persist=False)
    try:
        yield f"redis://127.0.0.1:{port}/0", port
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def bench_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DISPATCHYARD_REDIS_URL": redis_url,
        "DISPATCHYARD_DEV_MODE": "1",
        "DISPATCHYARD_DATA_DIR": tempfile.mkdtemp(prefix="dispatchyard-bench-data-"),
        # The request budgets off: a benchmark drives one org, host or peer far past them.
        "DISPATCHYARD_API_RATE_PER_S": "0",
        "DISPATCHYARD_HOST_RATE_PER_S": "0",
        "DISPATCHYARD_PEER_RATE_PER_S": "0",
        **extra,
    }
    os.environ.update(env)  # this process reads the same settings as the processes it starts
    from dispatchyard.settings import get_settings

    get_settings.cache_clear()  # an earlier benchmark of this run may have read other settings
    return env


@contextlib.contextmanager
def gunicorn(env: dict[str, str], workers: int = 2, threads: int = 16) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "api_shim.wsgi:app",
            "--worker-class",
            "gthread",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                break
        except (requests.ConnectionError, requests.Timeout):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("gunicorn did not come up")
        time.sleep(0.1)
    MASTERS[url] = proc.pid
    try:
        yield url
    finally:
        MASTERS.pop(url, None)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


def wrk(
    url: str,
    *,
    seconds: int | None = None,
    connections: int = 32,
    threads: int = 2,
    header: str = "",
    script: str | None = None,
    script_args: list[str] | None = None,
) -> dict:
    """Run wrk; returns {"rps": .., "p50_ms": .., "p99_ms": ..}."""
    seconds = seconds or quick(8, 2)
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is missing: apt-get install wrk (make bench does it)")
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if header:
        argv[1:1] = ["-H", header]
    if script:
        argv[1:1] = ["-s", script]
        argv += ["--", *(script_args or [])]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),
        "p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def median(values: list[float]) -> float:
    return statistics.median(values)


def ratio_line(label: str, ours: float, peer: float, unit: str, target: str = "") -> str:
    line = f"{label}: ours {ours:,.1f} {unit} | peer {peer:,.1f} {unit} | ratio {ours / peer:.2f}"
    return line + (f" (target {target})" if target else "")


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used (a process gone counts nothing)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)
