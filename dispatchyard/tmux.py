"""The tmux calls the pane routes and the pane hook share: run a tmux command against the
configured server, list its panes, find one.

Standard library only: the shim imports it for its pane routes and `dispatchyard.pane_hook`
runs beside the agent with it.
"""

from __future__ import annotations

import subprocess
from typing import TypedDict

TMUX_TIMEOUT_S = 3.0
# Tab-separated so a command or path with spaces survives the split (as repowire's _tmux).
PANE_FORMAT = (
    "#{pane_id}\t#{pane_pid}\t#{pane_current_command}\t"
    "#{pane_current_path}\t#{session_name}\t#{window_index}"
)
# tmux's answers that mean "there is no such server (so no such pane)", not "tmux failed".
NO_SERVER = ("no server running", "error connecting to", "can't find")


class Pane(TypedDict):
    pane_id: str
    pid: int
    command: str
    cwd: str
    session: str
    window: str


def tmux(socket: str | None, *args: str) -> subprocess.CompletedProcess[str] | None:
    """Run a tmux command against the configured server; None when tmux could not be run."""
    argv = ["tmux", *(["-L", socket] if socket else []), *args]
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=TMUX_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None


def list_panes(socket: str | None) -> list[Pane] | None:
    """Every pane of the tmux server; [] when no server runs; None when tmux could not answer
    (missing, hung, refused): callers must not read that as "no panes"."""
    done = tmux(socket, "list-panes", "-a", "-F", PANE_FORMAT)
    if done is None:
        return None
    if done.returncode != 0:
        return [] if any(s in done.stderr for s in NO_SERVER) else None
    panes: list[Pane] = []
    for line in done.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) != 6 or not parts[1].isdigit():
            continue  # a malformed row is skipped, not fatal (as repowire)
        pane_id, pid, command, cwd, session, window = parts
        panes.append(
            Pane(
                pane_id=pane_id,
                pid=int(pid),
                command=command,
                cwd=cwd,
                session=session,
                window=window,
            )
        )
    return panes


def find_pane(socket: str | None, pane_id: str) -> tuple[Pane | None, bool]:
    """(the pane or None, conclusive): conclusive is False when tmux could not answer."""
    panes = list_panes(socket)
    if panes is None:
        return None, False
    return next((p for p in panes if p["pane_id"] == pane_id), None), True
