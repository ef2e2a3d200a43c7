"""Retention: records that reached a final state are deleted, with every index entry, once
they have been final long enough (docs/operations.md, "Retention").

Each kind of `models.Final` has an index `keys.final_at(kind)` (record id -> ms it became
final), written by the same script or MULTI that moves a record into a final state and cleared
by a move out of one (a retried job, a host registering again). The sweep reads only the
entries due, a batch at a time, and deletes each record in one script that re-checks, per id,
that it is still final and was so by the cutoff: running it twice, or two at once, deletes
nothing twice. Nothing ever scans the keyspace.

A template's children are trimmed sooner: beyond the newest `keep` children (its last fires),
the finished ones are deleted even before their retention. A child that ends marks its
template in `keys.TEMPLATES_HISTORY`; the trim reads those marks.

Records that were final before this index existed are filed once, by `backfill`, from the
indexes that list them by state.

What is already bounded without this module: closed asks (`asks.CLOSED_KEPT_S`), traces,
deliveries, ask-many parents and attachments' records expire on their own; fired one-shot
schedules expire after the `kept_ms` their claim gave them; the events stream is capped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence

from dispatchyard.state import keys, store
from dispatchyard.state.jobs import FILTERS
from dispatchyard.state.models import (
    JOB_TERMINAL,
    MUTATION_TRANSITIONS,
    SESSION_TERMINAL,
    TEMPLATE_TRANSITIONS,
    Final,
    HostState,
    TemplateState,
)
from dispatchyard.state.scripts import scripts
from dispatchyard.state.store import Redis

# Ids one script call deletes: each is a few dozen commands, so a call stays around a
# millisecond or two and never holds Redis long.
CHUNK = 200
# The cutoff that takes any final job (a template's history is trimmed by count, not age).
ANY_AGE = 2**53
_JOB_SHAPE = {"filters": list(FILTERS), "terminal": [str(s) for s in JOB_TERMINAL]}
_TEMPLATE_STATES = json.dumps([str(s) for s in TEMPLATE_TRANSITIONS])


def due(r: Redis, kind: Final, cutoff_ms: int, limit: int) -> list[str]:
    """Ids of `kind` final since `cutoff_ms` or before, longest final first, at most `limit`."""
    return store.zrangebyscore(r, keys.final_at(kind), "-inf", cutoff_ms, limit)


def final_since(r: Redis, kind: Final, record_id: str) -> int | None:
    """When the record became final (ms), or None while it is not (or is unknown)."""
    score = store.zscore(r, keys.final_at(kind), record_id)
    return None if score is None else int(score)


def _purger(r: Redis, kind: Final, cutoff_ms: int, now_ms: int) -> Callable[[list[str]], object]:
    run = scripts(r)
    if kind == Final.JOBS:
        # By age, the attempts' executor records go too (long reaped); a history trim, as soon
        # as a child ends, leaves them to the reaper.
        shape = json.dumps({**_JOB_SHAPE, "executors": cutoff_ms < ANY_AGE})
        return lambda ids: run.purge_jobs(args=[cutoff_ms, shape, *ids])
    if kind == Final.TEMPLATES:
        final = TemplateState.CANCELLED
        return lambda ids: run.purge_templates(
            args=[cutoff_ms, now_ms, final, _TEMPLATE_STATES, *ids]
        )
    if kind == Final.SESSIONS:
        return lambda ids: run.purge_sessions(args=[cutoff_ms, *ids])
    if kind == Final.MUTATIONS:
        return lambda ids: run.purge_mutations(args=[cutoff_ms, *ids])
    return lambda ids: run.purge_hosts(args=[cutoff_ms, now_ms, HostState.DEREGISTERED, *ids])


def purge(r: Redis, kind: Final, ids: Sequence[str], cutoff_ms: int, now_ms: int) -> list[str]:
    """Delete those of `ids` final since `cutoff_ms` or before (each atomically, with all its
    index entries); the ids deleted. The others are left as they are."""
    run = _purger(r, kind, cutoff_ms, now_ms)
    deleted: list[str] = []
    for start in range(0, len(ids), CHUNK):
        out = run(list(ids[start : start + CHUNK]))
        deleted += [str(i) for i in out] if isinstance(out, list) else []
    return deleted


def sweep(r: Redis, kind: Final, cutoff_ms: int, now_ms: int, batch: int) -> int:
    """Delete at most `batch` records of `kind` final since `cutoff_ms` or before; how many."""
    return len(purge(r, kind, due(r, kind, cutoff_ms, batch), cutoff_ms, now_ms))


def trim_template_history(r: Redis, keep: int, batch: int, now_ms: int) -> int:
    """Delete the finished children of marked templates beyond their newest `keep` children,
    at most `batch` children in all; how many. A template leaves the marks once nothing more
    can be trimmed (a child that ends later marks it again)."""
    marked = store.zrange(r, keys.TEMPLATES_HISTORY, 0, batch - 1)
    deleted = 0
    for template_id in marked:
        budget = batch - deleted
        if budget <= 0:
            break
        children = keys.template_children(template_id)
        excess = int(r.zcard(children)) - keep
        done: list[str] = []
        if excess > 0:
            oldest = store.zrange(r, children, 0, min(excess, budget) - 1)
            done = purge(r, Final.JOBS, oldest, ANY_AGE, now_ms)
            deleted += len(done)
        if excess - len(done) <= 0 or not done:
            # What is left is within `keep`, or still running: nothing to trim until another
            # child ends. (A child that ends between the count and this ZREM is trimmed when
            # the next one ends, or by its retention.)
            r.zrem(keys.TEMPLATES_HISTORY, template_id)
    return deleted


_MUTATION_END = [str(s) for s, moves in MUTATION_TRANSITIONS.items() if not moves]
_SESSION_END = {str(s) for s in SESSION_TERMINAL}
PAGE = 1000


def _pages(r: Redis, key: str) -> Iterator[list[str]]:
    """The members of a sorted set, a page at a time."""
    start = 0
    while page := store.zrange(r, key, start, start + PAGE - 1):
        yield page
        start += PAGE


def _file(r: Redis, kind: Final, ids: list[str], now_ms: int) -> int:
    if ids:
        r.zadd(keys.final_at(kind), dict.fromkeys(ids, now_ms), nx=True)
    return len(ids)


def backfill(r: Redis, now_ms: int) -> int:
    """Once, after an upgrade: file the records that were final before the retention index
    existed, as final from `now_ms` (their end time is not indexed, so they go a retention from
    now), read from the indexes that list them (never a scan). Deregistered hosts are in no
    index and stay. Safe to run twice or alongside moves (ZADD NX; an entry whose record is no
    longer final is dropped by its purge). How many records it filed."""
    if r.exists(keys.RETENTION_BACKFILLED):
        return 0
    filed = 0
    for state in JOB_TERMINAL:
        for page in _pages(r, keys.jobs_by_state(state)):
            filed += _file(r, Final.JOBS, page, now_ms)
    cancelled = sorted(store.smembers(r, keys.templates_by_state(TemplateState.CANCELLED)))
    filed += _file(r, Final.TEMPLATES, cancelled, now_ms)
    for org_id in sorted(store.smembers(r, keys.ORGS)):
        for status in _MUTATION_END:
            for page in _pages(r, keys.org_mutations_in(org_id, status)):
                filed += _file(r, Final.MUTATIONS, page, now_ms)
        for page in _pages(r, keys.org_sessions(org_id)):
            reads = r.pipeline(transaction=False)
            for session_id in page:
                reads.hget(keys.session(session_id), "status")
            statuses = reads.execute()
            ended = [i for i, st in zip(page, statuses, strict=True) if st in _SESSION_END]
            filed += _file(r, Final.SESSIONS, ended, now_ms)
    r.set(keys.RETENTION_BACKFILLED, now_ms)
    return filed
