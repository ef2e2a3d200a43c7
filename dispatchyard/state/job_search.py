"""The jobs list's search indexes, beside the ownership ones (state/jobs.py): by backend, by
peer (the assigned peer, and every peer a delivery handed the job to) and by the words of the
title. Each is a ZSET `jobs:by:<name>:<value>` scored like `jobs:all`, so a filtered page walks
the smallest matching index newest first (state/job_queries.py) instead of every job.

A job's entries are written in the same MULTI as its document, and each is named by a field
`term:<name>:<value>` of the job's scalar hash `job:<id>`, which the retention purge reads to
take it out of each index (small fields keep that hash in Redis's compact encoding: a SET per
job, or one long field, costs three to four times as much). Jobs written before these indexes
existed are filed once, a batch per retention sweep (`backfill`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, cast

from dispatchyard.state import keys
from dispatchyard.state.store import Pipeline, Redis

# The list filters these indexes answer (query names), beside state/jobs.FILTERS.
SEARCH_FILTERS = ("backend", "peer", "q")
WORD = re.compile(r"\w+")
MIN_WORD, MAX_WORD = 2, 40
MAX_WORDS = 16  # of a title: a long title is found by its first words
TERM = "term:"  # the prefix of the fields of `job:<id>` naming the indexes it is in


def words(text: str | None) -> list[str]:
    """The distinct indexed words of `text`, lower case, in order (at most MAX_WORDS)."""
    out: list[str] = []
    for found in WORD.findall((text or "").lower()):
        if MIN_WORD <= len(found) <= MAX_WORD and found not in out:
            out.append(found)
            if len(out) == MAX_WORDS:
                break
    return out


def _backend(doc: Mapping[str, object]) -> str | None:
    execution = doc.get("execution")
    target = execution.get("target") if isinstance(execution, dict) else None
    backend = target.get("backend") if isinstance(target, dict) else None
    return str(backend) if backend else None


def terms(doc: Mapping[str, object]) -> set[tuple[str, str]]:
    """(index name, value) of each search index a job (or its summary) belongs in now."""
    out = {("word", w) for w in words(str(doc.get("title") or ""))}
    backend = _backend(doc)
    if backend:
        out.add(("backend", backend))
    out |= {("peer", peer) for peer in _peers(doc)}
    return out


def index_keys(doc: Mapping[str, object]) -> set[str]:
    """The search index keys a job (or its summary) belongs in now."""
    return {keys.jobs_by(name, value) for name, value in terms(doc)}


def _peers(doc: Mapping[str, object]) -> set[str]:
    """Every peer the job was assigned (as asked, and now) or delivered to."""
    found = {doc.get("assigned_peer_id")}
    request = doc.get("request")
    execution = request.get("execution") if isinstance(request, dict) else None
    target = execution.get("target") if isinstance(execution, dict) else None
    if isinstance(target, dict):
        found.add(target.get("assigned_peer_id"))
    runner = doc.get("runner")
    attempts = runner.get("attempts") if isinstance(runner, dict) else None
    for attempt in attempts if isinstance(attempts, list) else []:
        if isinstance(attempt, dict):
            found.add(attempt.get("assigned_peer_id"))
    return {str(p) for p in found if p}


def write(
    pipe: Pipeline,
    before: Mapping[str, object] | None,
    after: Mapping[str, object],
    job_id: str,
    score: float,
) -> None:
    """Add the job to the indexes it newly belongs in, each named in its scalar hash. An entry
    is never taken back while the job lives: a job handed to a second peer stays on the first
    one's list too."""
    new = terms(after) - (terms(before) if before else set())
    if not new:
        return
    for name, value in sorted(new):
        pipe.zadd(keys.jobs_by(name, value), {job_id: score})
    fields = {f"{TERM}{name}:{value}": "" for name, value in sorted(new)}
    pipe.hset(keys.job(job_id), mapping=cast(Any, fields))


def filter_keys(filters: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(index key, filter name, value) for each search filter given; `q` gives one per word
    (all must match). ValueError for a `q` without a word to look for."""
    out = []
    for name in ("backend", "peer"):
        value = filters.get(name)
        if value:
            out.append((keys.jobs_by(name, value), name, value))
    text = filters.get("q")
    if text is not None:
        found = words(text)
        if not found:
            raise ValueError(f"q must hold a word of {MIN_WORD} to {MAX_WORD} letters or digits")
        out += [(keys.jobs_by("word", w), "q", w) for w in found]
    return out


def matches(doc: Mapping[str, object], filters: Mapping[str, str]) -> bool:
    """Whether a summary matches every filter (ownership fields by equality, the search ones
    as their indexes would): for the few records listed without an index (templates)."""
    for name, value in filters.items():
        if name == "backend":
            ok = _backend(doc) == value
        elif name == "peer":
            ok = doc.get("assigned_peer_id") == value
        elif name == "q":
            ok = set(words(value)) <= set(words(str(doc.get("title") or "")))
        else:
            ok = doc.get(name) == value
        if not ok:
            return False
    return True


DONE = "done"


def backfill(r: Redis, batch: int) -> int | None:
    """File up to `batch` jobs of `jobs:all`, oldest first from where the last call stopped,
    in the search indexes (from their documents; adding a job already filed changes nothing).
    The number filed, or None once every job has been (then it costs one GET)."""
    mark = cast(str | None, r.get(keys.JOBS_SEARCH_BACKFILL))
    if mark == DONE:
        return None
    low, after = ("-inf", "") if not mark else (mark.split(" ", 1)[0], mark.split(" ", 1)[1])
    rows = cast(
        list[tuple[str, float]],
        r.zrangebyscore(keys.JOBS_ALL, low, "+inf", start=0, num=batch + 64, withscores=True),
    )
    if mark:  # ties on the mark's score come in ascending id order
        rows = [(i, sc) for i, sc in rows if sc > float(low) or i > after]
    rows = rows[:batch]
    if not rows:
        r.set(keys.JOBS_SEARCH_BACKFILL, DONE)
        return 0
    raws = cast(list[str | None], r.hmget(keys.JOB_DOCS, [i for i, _ in rows]))
    pipe = r.pipeline(transaction=False)
    for (job_id, score), raw in zip(rows, raws, strict=True):
        if raw:
            write(pipe, None, json.loads(raw), job_id, score)
    last_id, last_score = rows[-1]
    pipe.set(keys.JOBS_SEARCH_BACKFILL, f"{last_score!r} {last_id}")
    pipe.execute()
    return len(rows)
