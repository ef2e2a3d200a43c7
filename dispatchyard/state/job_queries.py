"""The read side of durable jobs: the list with its filters and cursor, the stored JSON a chunk
at a time, and the due/lease/expiry/deadline indexes the scheduler and the sweeps walk."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import cast

from dispatchyard.state import documents, keys, store
from dispatchyard.state.jobs import KIND
from dispatchyard.state.store import Redis

Cursor = tuple[float, str]


def due(r: Redis, now_ms: int, batch: int = 1000) -> list[str]:
    """Queued jobs whose fire should be sent (or re-sent) now."""
    return store.zrangebyscore(r, keys.JOBS_DUE, "-inf", now_ms, batch)


def expired_leases(r: Redis, now_ms: int, batch: int = 1000) -> list[str]:
    return store.zrangebyscore(r, keys.JOBS_LEASES, "-inf", now_ms, batch)


def past_expiry(r: Redis, now_ms: int, batch: int = 1000) -> list[str]:
    return store.zrangebyscore(r, keys.JOBS_EXPIRY, "-inf", now_ms, batch)


def past_deadline(r: Redis, now_ms: int, batch: int = 1000) -> list[str]:
    return store.zrangebyscore(r, keys.JOBS_DEADLINES, "-inf", now_ms, batch)


def summaries(r: Redis, job_ids: list[str]) -> list[str | None]:
    """Summary JSON of these jobs in order, None for a missing one."""
    return documents.raw_many(r, KIND, job_ids, summary=True, keep_missing=True)


def raw_chunks(r: Redis, job_ids: list[str], *, summary: bool) -> Iterator[list[str | None]]:
    """Stored JSON of these jobs, a chunk at a time (a long list is streamed, not held)."""
    return documents.raw_chunks(r, KIND, job_ids, summary=summary)


def _most_selective(r: Redis, candidates: list[tuple[str, str, str]]) -> tuple[str, str, str]:
    if len(candidates) == 1:
        return candidates[0]
    pipe = r.pipeline(transaction=False)
    for key, _, _ in candidates:
        pipe.zcard(key)
    sizes = cast(list[int], pipe.execute())
    return candidates[min(range(len(candidates)), key=sizes.__getitem__)]


def list_ids(
    r: Redis,
    *,
    state: str | None,
    filters: dict[str, str],
    limit: int | None,
    cursor: Cursor | None,
) -> tuple[list[str], Cursor | None]:
    """Job ids newest first, read from the most selective index (other filters checked on the
    summaries), and the cursor of the last one when a page was asked for."""
    candidates = [(keys.jobs_by_state(state), "state", state)] if state else []
    candidates += [(keys.jobs_by(name, value), name, value) for name, value in filters.items()]
    chosen = _most_selective(r, candidates) if candidates else None
    rest = [(c[1], c[2]) for c in candidates if c is not chosen]
    index = chosen[0] if chosen else keys.JOBS_ALL
    top: float | str = "+inf" if cursor is None else cursor[0]
    num = -1 if limit is None or rest else limit + 64  # ties on the cursor's score are skipped
    rows = cast(
        list[tuple[str, float]],
        r.zrevrangebyscore(index, top, "-inf", start=0, num=num, withscores=True),
    )
    if cursor is not None:
        rows = [(i, s) for i, s in rows if s < cursor[0] or i < cursor[1]]
    if rest:
        kept = []
        for row, raw in zip(rows, summaries(r, [i for i, _ in rows]), strict=True):
            doc = json.loads(raw) if raw else None
            if doc and all(doc.get(name) == value for name, value in rest):
                kept.append(row)
        rows = kept
    if limit is not None:
        rows = rows[:limit]
    next_cursor = (rows[-1][1], rows[-1][0]) if limit is not None and len(rows) == limit else None
    return [i for i, _ in rows], next_cursor
