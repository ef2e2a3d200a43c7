"""Per-hop timestamps of a frame's way from a request to a peer's socket, for the round-trip
benchmark (`bench/round_trip.py`): off unless the shim's `hop_stamps` setting is on.

The request's thread stamps the hops it passes (`parsed`: the body was read; `written`: the
ask is in Redis; `published`: the frame is handed to the holder), the frame carries them in a
`hops` object, and the holding process adds `hub` (its listener has the frame) and `sent` (its
writer is writing it). Each stamp is `time.time_ns()`, comparable between processes of one
machine and with the client's own clock there.
"""

from __future__ import annotations

import threading
import time
from typing import Any

ENABLED = False
_taken = threading.local()


def configure(enabled: bool) -> None:
    global ENABLED
    ENABLED = enabled


def begin(name: str = "parsed") -> None:
    """A request starts a new set of stamps with its first hop."""
    if ENABLED:
        _taken.hops = {name: time.time_ns()}


def stamp(name: str) -> None:
    if ENABLED and getattr(_taken, "hops", None) is not None:
        _taken.hops[name] = time.time_ns()


def carry(frame: dict[str, Any]) -> dict[str, Any]:
    """`frame` with the stamps this thread took so far and `published` (now), when on."""
    if not ENABLED or getattr(_taken, "hops", None) is None:
        return frame
    hops = {**_taken.hops, "published": time.time_ns()}
    _taken.hops = None
    return {**frame, "hops": hops}


def add(frame: dict[str, Any], name: str) -> None:
    """Stamp a frame that carries stamps (the holding process's hops)."""
    if isinstance(frame.get("hops"), dict):
        frame["hops"][name] = time.time_ns()
