"""Executor processes: start one per fire in its own process group, stop it (SIGTERM, then
SIGKILL after a grace period), and find leftovers by the attempt id in their environment."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

ATTEMPT_ENV = "DISPATCHYARD_ATTEMPT_ID"


@dataclass
class Executor:
    proc: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def group_alive(self) -> bool:
        try:
            os.killpg(self.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def stop(self, grace_s: float) -> int | None:
        """SIGTERM the whole group, SIGKILL what is left after `grace_s`; returns the exit code."""
        _signal_group(self.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            _signal_group(self.pid, signal.SIGKILL)
            self.proc.wait()
        self.kill_leftovers()
        return self.proc.returncode

    def kill_leftovers(self) -> None:
        """Children the executor left behind die with its fire."""
        if self.group_alive():
            _signal_group(self.pid, signal.SIGKILL)

    def output(self, limit: int = 1_000_000) -> tuple[str, str]:
        return _tail(self.stdout_path, limit), _tail(self.stderr_path, limit)


def spawn(argv: list[str], cwd: str, env: dict[str, str], log_dir: Path) -> Executor:
    """Start `argv` in `cwd` as the leader of a new session (so of its own process group)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = log_dir / "stdout.log", log_dir / "stderr.log"
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    return Executor(proc, stdout_path, stderr_path)


def reap(attempt_id: str) -> list[int]:
    """SIGKILL every process on this host started for `attempt_id` (found by the attempt id in
    its environment, so grandchildren whose leader already died are found too)."""
    killed = []
    for pid in pids_of(attempt_id):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed


def pids_of(attempt_id: str) -> list[int]:
    """Live (not zombie) processes on this host started for `attempt_id`."""
    marker = f"{ATTEMPT_ENV}={attempt_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _tail(path: Path, limit: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(size - limit, 0))
            return f.read().decode(errors="replace")
    except OSError:
        return ""
