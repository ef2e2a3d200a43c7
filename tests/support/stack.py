"""The real processes: gunicorn serving the shim, Celery workers and beats, as subprocesses of
one stack, on a Redis of the stack's own."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import redis
import requests

from dispatchyard.cli.devstack import free_port
from tests.support.http import Api
from tests.support.redis_server import RedisServer
from tests.support.waits import wait_for

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class Stack:
    """Processes of one stack, with their logs in `tmp`.

    Unless `redis_url` names another Redis (a restartable server, sentinels, a second stack's),
    the stack starts a redis-server of its own on a free port. Then only its own processes
    read and write that Redis: a task it enqueues is run by its worker or by nothing, never by
    the in-process worker of the integration tests (which consumes the suite's Redis for the
    rest of the run) nor by another stack's; and Redis pub/sub (the mesh) is not shared either.
    Every process gets the stack's DISPATCHYARD_REDIS_URL and `env`; `r` and `api` are the
    test's clients of the same Redis and of the stack's gunicorn.

    `stop_all()` stops the processes (a test may start them again); `close()` also stops the
    Redis the stack started.
    """

    def __init__(self, tmp: Path, redis_url: str | None = None, **env: str) -> None:
        assert "DISPATCHYARD_REDIS_URL" not in env, "a stack's Redis is its redis_url"
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.redis_server: RedisServer | None = None
        if redis_url is None:
            self.redis_server = RedisServer(tmp / "redis")
            self.redis_server.start()
            redis_url = self.redis_server.url
        self.redis_url = redis_url
        # Extra settings for every process of this stack.
        self.env = {**env, "DISPATCHYARD_REDIS_URL": redis_url}
        self.procs: dict[str, subprocess.Popen] = {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    @functools.cached_property
    def r(self) -> redis.Redis:
        """A client of the stack's Redis (a plain redis:// URL; a sentinel stack reads its
        Redis through the sentinels itself)."""
        return redis.Redis.from_url(self.redis_url, decode_responses=True)

    @functools.cached_property
    def api(self) -> Api:
        """A client of the stack's gunicorn."""
        return Api(self.url)

    @property
    def environ(self) -> dict[str, str]:
        """The environment of the stack's processes: for a command a test runs against it."""
        return {**os.environ, **self.env}

    def start(self, name: str, argv: list[str], **env: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115  (closed with the process)
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**self.environ, **env},
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

    def close(self) -> None:
        """Stop every process, then the Redis the stack started (if it did)."""
        self.stop_all()
        if "r" in self.__dict__:
            self.r.close()
        if self.redis_server is not None:
            self.redis_server.stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def full_stack(tmp: Path, **env: str) -> Iterator[Stack]:
    """gunicorn, a worker and beat on a Redis of their own, with `env` as extra settings;
    stopped (with their Redis) on exit."""
    with Stack(tmp, **env) as s:
        s.gunicorn()
        s.worker()
        s.beat()
        yield s
