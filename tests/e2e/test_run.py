"""`dispatchyard run` (what `make run` calls) at its edges: Ctrl-C stops the children before
their Redis and nothing prints a traceback; a port already in use stops it with one line."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

from dispatchyard.cli.devstack import free_port
from tests.support.stack import ROOT
from tests.support.waits import wait_for

BIN = Path(sys.executable).parent


def _env(tmp_path: Path, redis_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "DISPATCHYARD_DEV_MODE": "1",
        "DISPATCHYARD_DATA_DIR": str(tmp_path / "data"),
        "DISPATCHYARD_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "PYTHONUNBUFFERED": "1",
    }


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=0.2).ping())
    except redis.exceptions.ConnectionError:
        return False


def test_ctrl_c_stops_the_children_before_their_redis_without_a_traceback(tmp_path):
    redis_port, port = free_port(), free_port()
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        # Its own process group, as a shell gives a foreground job: Ctrl-C is a SIGINT to the
        # whole group.
        proc = subprocess.Popen(
            [str(BIN / "dispatchyard"), "run", "--port", str(port), "--no-flower"],
            cwd=ROOT,
            env=_env(tmp_path, redis_port),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: "dispatchyard is up" in log.read_text(errors="replace"),
            timeout=90,
            message="the banner",
        )
        assert _answers(redis_port)
        _first_key_command_prints_a_key(log.read_text(errors="replace"), tmp_path, redis_port)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text(errors="replace")
    after = text[text.index("system | stopping") :]
    assert "Traceback" not in text, after[-4000:]
    assert "Connection refused" not in after, after[-4000:]
    # The worker and beat shut down against a live Redis, which was stopped last.
    assert "Warm shutdown" in after and "beat: Releasing lock" in after
    assert not _answers(redis_port)


def _first_key_command_prints_a_key(text: str, tmp_path: Path, redis_port: int) -> None:
    """The banner's "First API key: run" is followed by a command; run as printed, it makes an
    org and prints its owner key."""
    lines = [line.split(" | ", 1)[-1] for line in text.splitlines()]
    label = lines.index("First API key: run")
    argv = shlex.split(lines[label + 1].strip())
    assert argv[1:] == ["org", "create", "Acme", "--slug", "acme"], argv
    done = subprocess.run(
        argv, cwd=ROOT, env=_env(tmp_path, redis_port), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert "owner key (shown once, store it now): rsk_live_" in done.stdout, done.stdout


def test_a_port_in_use_stops_run_with_one_line_and_starts_nothing(tmp_path):
    redis_port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run(
            [str(BIN / "dispatchyard"), "run", "--port", str(port)],
            cwd=ROOT,
            env=_env(tmp_path, redis_port),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert f"port {port} is already in use" in line and "PORT=" in line and "--port" in line
    assert time.monotonic() - started < 10
    assert not _answers(redis_port), "nothing is started"
