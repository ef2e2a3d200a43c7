"""The one clock. Tests move it instead of sleeping; every process reads time through it."""

from __future__ import annotations

import time
from datetime import UTC, datetime

_offset_ms = 0


def now_ms() -> int:
    """Milliseconds since the epoch, shifted by the test offset."""
    return int(time.time() * 1000) + _offset_ms


def now() -> float:
    return now_ms() / 1000.0


def advance(seconds: float) -> None:
    """Move the clock forward (tests only)."""
    global _offset_ms
    _offset_ms += int(seconds * 1000)


def reset() -> None:
    global _offset_ms
    _offset_ms = 0


def iso_ms(ms: int | str | None) -> str | None:
    """Epoch ms -> ISO-8601 UTC with a Z, as the platform group answers."""
    if ms in (None, ""):
        return None
    dt = datetime.fromtimestamp(int(ms) / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
