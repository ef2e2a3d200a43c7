"""The read side of durable jobs: the list with its filters and cursor, the stored JSON a chunk
at a time, and the due/lease/expiry/deadline indexes the scheduler and the sweeps walk."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from dispatchyard.state import documents, job_search, keys, store
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


def count_by_state(r: Redis, states: tuple[str, ...]) -> dict[str, int]:
    """How many jobs are in each state (one ZCARD of its index each, one round trip)."""
    pipe = r.pipeline(transaction=False)
    for state in states:
        pipe.zcard(keys.jobs_by_state(state))
    return dict(zip(states, cast(list[int], pipe.execute()), strict=True))


def summaries(r: Redis, job_ids: list[str]) -> list[str | None]:
    """Summary JSON of these jobs in order, None for a missing one."""
    return documents.raw_many(r, KIND, job_ids, summary=True, keep_missing=True)


def raw_chunks(r: Redis, job_ids: list[str], *, summary: bool) -> Iterator[list[str | None]]:
    """Stored JSON of these jobs, a chunk at a time (a long list is streamed, not held)."""
    return documents.raw_chunks(r, KIND, job_ids, summary=summary)


# A filtered page walks its smallest index in batches and checks the other filters by
# membership (ZMSCORE); it stops after this many entries and hands back a cursor there, so a
# page costs at most that much however rare the match (it may then hold fewer than `limit`).
SCAN_BATCH = 500
SCAN_MAX = 10_000

Candidate = tuple[str, str, str]  # index key, filter name, value


def _by_size(r: Redis, candidates: list[Candidate]) -> list[Candidate]:
    """The candidates, smallest index first."""
    if len(candidates) < 2:
        return candidates
    pipe = r.pipeline(transaction=False)
    for key, _, _ in candidates:
        pipe.zcard(key)
    sizes = cast(list[int], pipe.execute())
    order = sorted(range(len(candidates)), key=sizes.__getitem__)
    return [candidates[i] for i in order]


def _members_of_all(r: Redis, others: list[str], ids: list[str]) -> list[bool]:
    """For each id, whether every index in `others` holds it."""
    if not others or not ids:
        return [True] * len(ids)
    pipe = r.pipeline(transaction=False)
    for key in others:
        pipe.zmscore(key, ids)
    found = cast(list[list[float | None]], pipe.execute())
    return [all(scores[i] is not None for scores in found) for i in range(len(ids))]


def _after(rows: list[tuple[str, float]], cursor: Cursor | None) -> list[tuple[str, float]]:
    """Drop the rows at or before the cursor (ties on its score come in descending id order)."""
    if cursor is None:
        return rows
    return [(i, s) for i, s in rows if s < cursor[0] or i < cursor[1]]


def list_ids(
    r: Redis,
    *,
    state: str | None,
    filters: dict[str, str],
    limit: int | None,
    cursor: Cursor | None,
) -> tuple[list[str], Cursor | None]:
    """Job ids newest first that match `state` and every filter (ownership fields, and the
    search ones of state/job_search.py: ValueError for a bad `q`), and the cursor to go on
    from when a page was asked for (None after the last page). The smallest matching index
    is walked; the others are checked by membership. A page reads at most SCAN_MAX entries:
    past that it may hold fewer than `limit` ids, with a cursor to go on."""
    candidates = [(keys.jobs_by_state(state), "state", state)] if state else []
    candidates += [
        (keys.jobs_by(name, value), name, value)
        for name, value in filters.items()
        if name not in job_search.SEARCH_FILTERS
    ]
    candidates += job_search.filter_keys(filters)
    ordered = _by_size(r, candidates)
    index = ordered[0][0] if ordered else keys.JOBS_ALL
    others = [key for key, _, _ in ordered[1:]]
    top: float | str = "+inf" if cursor is None else cursor[0]
    if limit is None:  # the whole list (repowire's shape): every entry of the index
        rows = _after(
            cast(list[tuple[str, float]], r.zrevrangebyscore(index, top, "-inf", withscores=True)),
            cursor,
        )
        keep = _members_of_all(r, others, [i for i, _ in rows])
        return [i for (i, _), ok in zip(rows, keep, strict=True) if ok], None
    batch = max(limit + 64, SCAN_BATCH) if others else limit + 64
    kept: list[tuple[str, float]] = []
    last: tuple[str, float] | None = None
    offset = scanned = 0
    while True:
        got = cast(
            list[tuple[str, float]],
            r.zrevrangebyscore(index, top, "-inf", start=offset, num=batch, withscores=True),
        )
        offset += len(got)
        rows = _after(got, cursor)
        keep = _members_of_all(r, others, [i for i, _ in rows])
        for row, ok in zip(rows, keep, strict=True):
            scanned += 1
            last = row
            if ok:
                kept.append(row)
                if len(kept) == limit:
                    return [i for i, _ in kept], (row[1], row[0])
        if len(got) < batch:  # the index is exhausted: the last page
            return [i for i, _ in kept], None
        if scanned >= SCAN_MAX and last is not None:
            return [i for i, _ in kept], (last[1], last[0])
