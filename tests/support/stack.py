"""The real processes: gunicorn serving the shim, Celery workers and beats, as subprocesses of
one stack."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import requests

from dispatchyard.cli.devstack import free_port
from tests.support.waits import wait_for

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class Stack:
    def __init__(self, tmp: Path, **env: str) -> None:
        self.tmp = tmp
        self.env = env  # extra settings for every process of this stack
        self.procs: dict[str, subprocess.Popen] = {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, name: str, argv: list[str], **env: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115  (closed with the process)
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def gunicorn(self) -> None:
        self.start(
            "shim",
            [
                str(BIN / "gunicorn"),
                "api_shim.wsgi:app",
                "--worker-class",
                "gthread",
                "--workers",
                "2",
                "--threads",
                "8",
                "--bind",
                f"127.0.0.1:{self.port}",
            ],
        )
        wait_for(self._healthy, timeout=30, message="gunicorn /health")

    def _healthy(self) -> bool:
        try:
            return requests.get(self.url + "/health", timeout=1).status_code == 200
        except (requests.ConnectionError, requests.Timeout):
            return False

    def worker(self, name: str = "worker", machine: str = "e2e-host", **env: str):
        return self.start(
            name,
            [
                str(BIN / "celery"),
                "-A",
                "workers",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "4",
                "--hostname",
                f"{name}@%h",
            ],
            DISPATCHYARD_MACHINE=machine,
            **env,
        )

    def beat(self, name: str = "beat", **env: str):
        return self.start(
            name,
            [
                str(BIN / "celery"),
                "-A",
                "workers",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.tmp / f"{name}-schedule"),
            ],
            **env,
        )

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


@contextlib.contextmanager
def full_stack(tmp: Path, **env: str) -> Iterator[Stack]:
    """gunicorn, a worker and beat, with `env` as extra settings; stopped on exit."""
    s = Stack(tmp, **env)
    try:
        s.gunicorn()
        s.worker()
        s.beat()
        yield s
    finally:
        s.stop_all()
