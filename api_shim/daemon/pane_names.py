"""Names the pane routes give and read: a pane id's form, a linked peer's default names, the
backend a pane's command hints at, and whether a peer's machine is this one."""

from __future__ import annotations

import re
import socket
from typing import Any

from dispatchyard.settings import Settings

PANE_ID = re.compile(r"^%\d+$")
DEFAULT_NAME_SUFFIXES = 20  # {folder}-{n}-{backend}, n = 2.., before a link gives up on names
# Known agent command basenames -> backend hint (repowire's orphan_panes._AGENT_COMMANDS).
AGENT_COMMANDS = {
    "claude": "claude-code",
    "codex": "codex",
    "gemini": "gemini",
    "opencode": "opencode",
    "antigravity": "antigravity",
    "pi": "pi",
}
NAME_CHARS = re.compile(r"[^a-zA-Z0-9._-]")


def detect_backend(command: str) -> tuple[str, str]:
    """(backend, confidence) from a pane's command: a display hint, never acted on."""
    backend = AGENT_COMMANDS.get(command.strip().rsplit("/", 1)[-1].lower())
    return (backend, "hint") if backend else ("unknown", "unknown")


def slug(text: str, fallback: str) -> str:
    """A folder or session name as a peer name or circle (repowire's _sanitize_folder_name)."""
    return re.sub(r"-{2,}", "-", NAME_CHARS.sub("-", text)).strip("-")[:40] or fallback


def default_names(backend: str, cwd: str) -> list[str]:
    """`{folder}-{backend}`, then repowire's collision names `{folder}-{n}-{backend}`."""
    folder = slug(cwd.rstrip("/").rsplit("/", 1)[-1], "peer")
    return [f"{folder}-{backend}"] + [
        f"{folder}-{n}-{backend}" for n in range(2, DEFAULT_NAME_SUFFIXES + 2)
    ]


def is_local(s: Settings, peer: dict[str, Any]) -> bool:
    """repowire's is_local_machine: the peer's machine is this one, or unknown with a pane."""
    machine = peer.get("machine")
    if machine in {s.machine_name(), socket.gethostname()}:
        return True
    return machine in (None, "", "unknown") and bool(peer.get("pane_id"))
