"""The one clock. Tests move it instead of sleeping; every process reads time through it."""

from __future__ import annotations

import time
from datetime import UTC, datetime

_offset_ms = 0
_rate = 1.0
_anchor_ms = 0


def now_ms() -> int:
    """Milliseconds since the epoch, shifted by the test offset (and sped up by the test rate)."""
    real = time.time() * 1000
    if _rate != 1.0:
        real = _anchor_ms + (real - _anchor_ms) * _rate
    return int(real) + _offset_ms


def configure(rate: float = 1.0, anchor_ms: int = 0) -> None:
    """Tests only: let time run `rate` times faster from `anchor_ms`, the same in every process
    that is configured alike (reliability tests run real beats across many due minutes)."""
    global _rate, _anchor_ms
    _rate, _anchor_ms = rate, anchor_ms


def now() -> float:
    return now_ms() / 1000.0


def advance(seconds: float) -> None:
    """Move the clock forward (tests only)."""
    global _offset_ms
    _offset_ms += int(seconds * 1000)


def reset() -> None:
    global _offset_ms
    _offset_ms = 0


# The contract fixes one timestamp format per route group: the daemon group answers ISO-8601
# with an offset (`2026-11-22T19:00:40.872767+00:00`, as repowire), the platform group ISO-8601
# UTC with a Z and milliseconds. Both are made here and nowhere else.


def iso(ms: int) -> str:
    """Epoch ms -> ISO-8601 with offset, as the daemon group answers."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def parse_ms(value: object) -> int | None:
    """An ISO-8601 timestamp (naive means UTC) -> epoch ms; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def iso_ms(ms: int | str | None) -> str | None:
    """Epoch ms -> ISO-8601 UTC with a Z, as the platform group answers."""
    if ms in (None, ""):
        return None
    dt = datetime.fromtimestamp(int(ms) / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
