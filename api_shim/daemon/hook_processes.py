"""The pane hook processes this shim starts (`python -m dispatchyard.pane_hook`), and the files
that keep one hook per pane.

A hook runs in its own session, detached from the request that started it. The starter takes
an exclusive flock on the pane's lock file under `<data_dir>/pane-hooks/` and hands it to the
hook (pass_fds), which holds it until it exits: a second link or rehook of the pane finds it
taken and starts nothing. The same directory keeps each pane's hook log and metadata (the peer
it serves, read by the doctor and by rehook's ownership check).

Nothing here knows Flask: the caller passes the settings, the Redis client and the URL the hook
dials.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import redis

from dispatchyard import pane_hook
from dispatchyard.settings import Settings
from dispatchyard.state import clock, connections
from dispatchyard.state.clock import iso

POLL_S = 0.25  # how often a wait for a hook's socket looks again
STOP_WAIT_S = 5.0  # how long a killed hook may take to be collected


def hook_file(s: Settings, pane_id: str, suffix: str) -> Path:
    """The pane's `.lock`, `.log` or `.json` file (the directory is made on first use)."""
    directory = s.data_dir / "pane-hooks"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Pane ids are per tmux server: the server's name keeps two servers' %3 apart.
    return directory / f"{s.tmux_socket or 'default'}-{pane_id.lstrip('%')}{suffix}"


def claim(s: Settings, pane_id: str) -> IO[str] | None:
    """The pane's hook lock, taken; None when a hook (or another link) holds it."""
    lock = hook_file(s, pane_id, ".lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        return None
    return lock


def meta(s: Settings, pane_id: str) -> dict[str, Any]:
    """What the pane's last hook recorded when it started ({} when nothing readable is)."""
    try:
        found = json.loads(hook_file(s, pane_id, ".json").read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def forget(s: Settings, pane_id: str) -> None:
    """Remove the pane's hook metadata."""
    hook_file(s, pane_id, ".json").unlink(missing_ok=True)


def start(
    s: Settings, lock: IO[str], pane_id: str, peer: dict[str, Any], url: str
) -> subprocess.Popen[bytes]:
    """Start the pane's hook for `peer` in its own session, holding `lock`, dialling `url`, and
    record its metadata. Raises OSError; a hook whose metadata could not be written is killed."""
    options = {
        "--url": url,
        "--pane": pane_id,
        "--name": peer["name"],
        "--circle": peer.get("circle") or "global",
        "--backend": peer.get("backend") or "claude-code",
        "--role": peer.get("role") or "agent",
        "--peer-id": peer.get("peer_id"),
        "--path": peer.get("path"),
        "--machine": peer.get("machine"),
        "--tmux-session": peer.get("tmux_session"),
        "--agent-pid": peer.get("agent_pid"),
        "--model": peer.get("model"),
        "--tmux-socket": s.tmux_socket,
    }
    # `--flag=value`: a value starting with "-" (a folder, a name) must not read as a flag.
    argv = [sys.executable, "-m", pane_hook.__name__]
    argv += [f"{flag}={value}" for flag, value in options.items() if value not in (None, "")]
    env = dict(os.environ)
    if s.daemon_auth_token is not None:
        env[pane_hook.PANE_HOOK_TOKEN_ENV] = s.daemon_auth_token.get_secret_value()
    with hook_file(s, pane_id, ".log").open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            pass_fds=(lock.fileno(),),
        )
    record = {
        "pid": proc.pid,
        "peer_id": peer.get("peer_id"),
        "display_name": peer["name"],
        "pane_id": pane_id,
        "started_at": iso(clock.now_ms()),
    }
    try:
        tmp = hook_file(s, pane_id, ".json.tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(hook_file(s, pane_id, ".json"))
    except OSError:
        stop(proc)  # a hook the caller will not hear of must not run on
        raise
    return proc


def await_socket(
    r: redis.Redis, peer_id: str, proc: subprocess.Popen[bytes], wait_s: float
) -> bool:
    """Whether the hook's WebSocket for `peer_id` arrives within `wait_s`; gives up early if
    the hook exits."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if connections.live(r, [peer_id])[0]:
            return True
        if proc.poll() is not None:
            break
        time.sleep(POLL_S)
    return connections.live(r, [peer_id])[0]


def release(proc: subprocess.Popen[bytes]) -> None:
    """Let the hook run on: its exit status is collected whenever it ends (no zombie is left)."""
    threading.Thread(target=proc.wait, name=f"pane-hook-{proc.pid}", daemon=True).start()


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill the hook and anything it started (its session is its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(STOP_WAIT_S)
