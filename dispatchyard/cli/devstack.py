"""The development stack: a local redis-server, and a supervisor for the Procfile's processes.

`dispatchyard run` uses it, and so do the tests and benchmarks (a private redis-server on a free
port). A supervised process that exits is started again with backoff while the others keep
running; every line it prints comes out as `name | line`, as honcho prints it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import redis

# The project's root: the Procfile and the shipped redis.conf live there.
ROOT = Path(__file__).resolve().parents[2]
REDIS_CONF = ROOT / "redis.conf"

# A child that exits is started again after this delay, doubled on each quick exit up to the
# maximum; one that ran for STABLE_AFTER_S starts from the shortest delay again.
RESTART_DELAY_S = 1.0
RESTART_DELAY_MAX_S = 30.0
STABLE_AFTER_S = 30.0

# The supervisor's /health probes carry this query string, so their access-log lines are not shown.
PROBE_MARK = "probe=dispatchyard-run"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_taken(port: int) -> bool:
    """Whether something already listens on 127.0.0.1:port (a server we would start there
    could not bind it)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def redis_argv(
    port: int, data_dir: Path, *, conf: Path | None = None, persist: bool = True
) -> list[str]:
    """The redis-server command for 127.0.0.1:port with its files in data_dir."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = ["redis-server"]
    if conf is not None:
        argv.append(str(conf))
    argv += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir.resolve())]
    argv += ["--daemonize", "no", "--logfile", str((data_dir / "redis.log").resolve())]
    if not persist:
        argv += ["--save", "", "--appendonly", "no"]
    return argv


def start_redis(
    port: int, data_dir: Path, *, conf: Path | None = None, persist: bool = True
) -> subprocess.Popen[bytes]:
    """Start a redis-server on 127.0.0.1:port with its files in data_dir; waits until it answers.
    In a session of its own: a terminal's Ctrl-C goes to whoever started it, who stops it last
    (the others need it to shut down cleanly)."""
    argv = redis_argv(port, data_dir, conf=conf, persist=persist)
    proc = spawn_redis(argv)
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            client.ping()
            return proc
        except redis.exceptions.ConnectionError:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {data_dir / 'redis.log'}") from None
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not answer within 15 s")


def spawn_redis(argv: list[str]) -> subprocess.Popen[bytes]:
    """The redis-server process, out of the caller's process group (see start_redis)."""
    return subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def procfile() -> dict[str, str]:
    """The Procfile's processes, name -> command."""
    out = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            out[name.strip()] = command.strip()
    return out


class Printer:
    """honcho's output, without honcho's stop-all: every line as `name | line`, the names
    padded to one width and coloured like honcho's (only on a terminal)."""

    COLOURS = ("36", "33", "32", "35", "34", "31", "96", "93", "92", "95")

    def __init__(
        self,
        names: Iterable[str],
        stream: IO[str] | None = None,
        routine: Iterable[str] = (),
    ) -> None:
        self.stream = stream or sys.stdout
        # INFO lines naming one of these tasks (beat's "Sending due task", the worker's
        # "received"/"succeeded") are routine ticks: not shown (`run --verbose` shows them).
        self.routine = tuple(routine)
        self.width = max(len(n) for n in [*names, "system"])
        self.colour = self.stream.isatty() and "NO_COLOR" not in os.environ
        self.lock = threading.Lock()
        self.codes: dict[str, str] = {}

    def write(self, name: str, line: str) -> None:
        if PROBE_MARK in line:  # the access-log line of the supervisor's own readiness probe
            return
        if "INFO/" in line and any(task in line for task in self.routine):
            return
        prefix = f"{name.ljust(self.width)} | "
        if self.colour:
            code = self.codes.setdefault(name, self.COLOURS[len(self.codes) % len(self.COLOURS)])
            prefix = f"\033[{code}m{prefix}\033[0m"
        with self.lock:
            self.stream.write(prefix + line.rstrip("\r\n") + "\n")
            self.stream.flush()

    def system(self, text: str) -> None:
        for line in text.splitlines() or [""]:
            self.write("system", line)

    def pump(self, name: str, pipe: IO[bytes]) -> None:
        """Copy a child's output, a line at a time, until it closes (on a thread)."""
        with pipe:
            for raw in iter(pipe.readline, b""):
                self.write(name, raw.decode(errors="replace"))


@dataclass
class Child:
    """One supervised process: how to start it, and when it is due to start again."""

    name: str
    launch: Callable[[], subprocess.Popen[bytes]]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    delay: float = RESTART_DELAY_S
    restart_at: float | None = None
    printer: Printer | None = field(default=None, repr=False)

    def start(self) -> None:
        self.proc = self.launch()
        self.started_at = time.monotonic()
        self.restart_at = None
        if self.printer is not None and self.proc.stdout is not None:
            args = (self.name, self.proc.stdout)
            threading.Thread(target=self.printer.pump, args=args, daemon=True).start()

    def check(self, now: float) -> None:
        """Restart it when due; note (one line) that it exited and when it starts again."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.start()
            return
        code = self.proc.poll() if self.proc is not None else None
        if code is None:
            return
        if now - self.started_at >= STABLE_AFTER_S:
            self.delay = RESTART_DELAY_S
        line = f"{self.name} exited with {code}; restarting it in {self.delay:g} s"
        if self.printer is not None:
            self.printer.system(line)
        else:
            print(line, file=sys.stderr, flush=True)
        self.restart_at = now + self.delay
        self.delay = min(self.delay * 2, RESTART_DELAY_MAX_S)


def terminate(children: dict[str, subprocess.Popen[bytes]]) -> None:
    """Stop every child and wait for it, then Redis: the others shut down against a live Redis
    (a worker acks what it was doing, beat releases its lock)."""
    first = {n: p for n, p in children.items() if n != "redis"}
    _stop(first, signal_group=True)
    if "redis" in children:
        _stop({"redis": children["redis"]}, signal_group=False)


def _stop(procs: dict[str, subprocess.Popen[bytes]], *, signal_group: bool) -> None:
    """SIGTERM each (its whole process group when `signal_group`), then wait up to 15 s in all
    before SIGKILL."""
    for proc in procs.values():
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM) if signal_group else proc.terminate()
    deadline = time.monotonic() + 15
    for name, proc in procs.items():
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop; killing it", file=sys.stderr)
            proc.kill()
