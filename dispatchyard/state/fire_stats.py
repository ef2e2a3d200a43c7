"""Fires per minute and their lateness, for the dashboard's charts (`GET /stats/fires`).

Every acquire of a job's attempt (a fire: due, run or retry) counts in the minute it happened,
in the same MULTI as the move to `dispatching` (state/jobs.py). A fire because the job was due
also adds its lateness, from `due_at` to the acquire, to the minute's sum and maximum. A minute
is one small ZSET whose member scores are its numbers (ZINCRBY adds, ZADD GT keeps a maximum),
expiring after KEPT_MS, so the last hour is at most 60 keys and reading it is one pipeline.
(The all-time lateness histogram of `/metrics` is state/stats.py's.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from dispatchyard.state import keys
from dispatchyard.state.store import Pipeline, Redis

MINUTE_MS = 60_000
KEPT_MS = 3 * 3600 * 1000  # a minute's counts, from its start
MAX_MINUTES = 180


def minute_of(at_ms: int) -> int:
    return at_ms - at_ms % MINUTE_MS


def record(pipe: Pipeline, at_ms: int, *, late_ms: int | None) -> None:
    """Count a fire acquired at `at_ms`; `late_ms` for a fire because it was due."""
    key = keys.fires_minute(str(minute_of(at_ms)))
    pipe.zincrby(key, 1, "fires")
    if late_ms is not None:
        late = max(0, late_ms)
        pipe.zincrby(key, 1, "due")
        pipe.zincrby(key, late, "late_sum_ms")
        pipe.zadd(key, {"late_max_ms": late}, gt=True)
    pipe.pexpireat(key, minute_of(at_ms) + KEPT_MS)


@dataclass(frozen=True)
class Minute:
    start_ms: int
    fires: int
    due: int  # fires because due (the ones with a lateness)
    late_sum_ms: float
    late_max_ms: float


def last(r: Redis, now_ms: int, minutes: int) -> list[Minute]:
    """The last `minutes` minutes up to the current one, oldest first (zeros where none)."""
    current = minute_of(now_ms)
    starts = [current - i * MINUTE_MS for i in range(min(minutes, MAX_MINUTES) - 1, -1, -1)]
    pipe = r.pipeline(transaction=False)
    for start in starts:
        pipe.zrange(keys.fires_minute(str(start)), 0, -1, withscores=True)
    out = []
    for start, rows in zip(
        starts, cast(list[list[tuple[str, float]]], pipe.execute()), strict=True
    ):
        got = dict(rows)
        out.append(
            Minute(
                start_ms=start,
                fires=int(got.get("fires", 0)),
                due=int(got.get("due", 0)),
                late_sum_ms=got.get("late_sum_ms", 0.0),
                late_max_ms=got.get("late_max_ms", 0.0),
            )
        )
    return out
