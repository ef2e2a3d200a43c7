"""The document store jobs and recurring templates share.

A record is one JSON document, its wire status object, kept in a HASH of documents beside a
precomputed summary in a HASH of summaries (so listing 10,000 records is two HMGETs and no
re-encoding), and a small scalar HASH per record that supervisors poll and that every change
writes, so it is the key transactions WATCH.

Every change is optimistic: WATCH the record's scalar key, read the document, let a pure rule
edit it (or refuse), and write the document, its summary, its scalars and its indexes in one
MULTI/EXEC, retried if anything touched the record meanwhile. (Documents nest lists; Lua's
cjson cannot round-trip them faithfully — empty arrays become objects — so rules stay in
Python, still atomic.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypedDict, TypeVar, cast

from dispatchyard.state import clock, store
from dispatchyard.state.errors import NotFound
from dispatchyard.state.store import Pipeline, Redis


class Stored(TypedDict):
    """What the store itself writes into every document: the time of the last change."""

    updated_at: str


# A kind's document type (jobs: job_shape.JobDoc, templates: template_rules.TemplateDoc).
D = TypeVar("D", bound=Stored)


class IndexMeta(TypedDict, total=False):
    """What a rule tells its kind's index writer (jobs read it; templates keep no trace)."""

    stage: str  # the trace stage to record
    detail: Mapping[str, object]  # the stage's detail
    due_ms: int | None  # when a new queued job's fire is due (None: not in the due index)


@dataclass
class Write:
    """What a rule decided: write the edited document, with `meta` for the kind's index writer,
    `extra` commands for the same MULTI, and a `result` handed back to the caller (who knows
    its type)."""

    meta: IndexMeta = field(default_factory=lambda: IndexMeta())
    extra: Callable[[Pipeline], None] | None = None
    result: Any = None


@dataclass(frozen=True)
class Kind(Generic[D]):
    """How one kind of record is stored."""

    docs: str  # HASH id -> document JSON
    summaries: str  # HASH id -> summary JSON
    record_id: Callable[[D], str]  # the document's id
    scalar_key: Callable[[str], str]  # the HASH every change writes and transactions WATCH
    scalars: Callable[[D, int], dict[str, str | int]]
    summarize: Callable[[D], Mapping[str, object]]
    # Keeps the kind's indexes (and events, traces) in step, in the caller's MULTI:
    # (pipe, before or None, after, now_ms, meta).
    index: Callable[[Pipeline, D | None, D, int, IndexMeta], None]
    not_found: str  # the NotFound message for an unknown id, `{}` standing for the id


def dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _loads(kind: Kind[D], raw: str) -> D:
    # The stored JSON is a document this kind wrote.
    return cast(D, json.loads(raw))


def put(
    pipe: Pipeline,
    kind: Kind[D],
    before: D | None,
    after: D,
    now_ms: int,
    meta: IndexMeta | None = None,
) -> None:
    """The commands that store a document and everything derived from it, for a MULTI."""
    record_id = kind.record_id(after)
    after["updated_at"] = clock.iso(now_ms)
    pipe.hset(kind.docs, record_id, dumps(after))
    pipe.hset(kind.summaries, record_id, dumps(kind.summarize(after)))
    store.hset_fields(pipe, kind.scalar_key(record_id), kind.scalars(after, now_ms))
    kind.index(pipe, before, after, now_ms, meta or {})


def get(r: Redis, kind: Kind[D], record_id: str) -> D | None:
    raw = store.hget(r, kind.docs, record_id)
    return _loads(kind, raw) if raw else None


def raw(r: Redis, kind: Kind[D], record_id: str) -> str | None:
    """The stored document, already JSON (routes answer with it as is)."""
    return store.hget(r, kind.docs, record_id)


def raw_many(
    r: Redis, kind: Kind[D], ids: list[str], *, summary: bool, keep_missing: bool = False
) -> list[str | None]:
    """Stored JSON of these records (summaries or documents), in order; missing ones dropped
    unless `keep_missing` (then None in their place)."""
    values = store.hmget(r, kind.summaries if summary else kind.docs, ids)
    return values if keep_missing else [v for v in values if v]


def raw_chunks(
    r: Redis, kind: Kind[D], ids: list[str], *, summary: bool, size: int = 500
) -> Iterator[list[str | None]]:
    """Stored JSON of these records, a chunk at a time (a long list is streamed, not held)."""
    for start in range(0, len(ids), size):
        yield raw_many(r, kind, ids[start : start + size], summary=summary)


# A rule: edits the document in place and says what to write (see `mutate`).
Rule = Callable[[D, Pipeline], Write | None]


def mutate(
    r: Redis, kind: Kind[D], record_id: str, rule: Rule[D], now_ms: int, *watch: str
) -> tuple[D, Write | None]:
    """Apply `rule` atomically: it edits the document in place and returns a Write, or None to
    write nothing, or raises a StateError to refuse. It may read other keys through the pipe
    (still in immediate mode; `watch` lists keys to WATCH from the start). Returns the document
    as the rule left it and its Write. NotFound for an unknown record."""

    def txn(pipe: Pipeline) -> tuple[D, Write | None]:
        stored = store.hget(pipe, kind.docs, record_id)
        if stored is None:
            raise NotFound(kind.not_found.format(record_id))
        before = _loads(kind, stored)
        after = _loads(kind, stored)
        write = rule(after, pipe)
        if write is None:
            return after, None
        pipe.multi()
        put(pipe, kind, before, after, now_ms, write.meta)
        if write.extra is not None:
            write.extra(pipe)
        return after, write

    return store.transaction(r, txn, kind.scalar_key(record_id), *watch)
