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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dispatchyard.state import clock, store
from dispatchyard.state.errors import NotFound
from dispatchyard.state.store import Pipeline, Redis

Doc = dict[str, Any]


@dataclass
class Write:
    """What a rule decided: write the edited document, with `meta` for the kind's index writer
    (jobs: the trace stage and its detail, when the fire is due), `extra` commands for the same
    MULTI, and a `result` handed back to the caller."""

    meta: dict[str, Any] = field(default_factory=dict)
    extra: Callable[[Pipeline], None] | None = None
    result: Any = None


@dataclass(frozen=True)
class Kind:
    """How one kind of record is stored."""

    docs: str  # HASH id -> document JSON
    summaries: str  # HASH id -> summary JSON
    id_field: str  # the document field holding the id
    scalar_key: Callable[[str], str]  # the HASH every change writes and transactions WATCH
    scalars: Callable[[Doc, int], dict[str, str | int]]
    summarize: Callable[[Doc], Doc]
    # Keeps the kind's indexes (and events, traces) in step, in the caller's MULTI:
    # (pipe, before or None, after, now_ms, meta).
    index: Callable[[Pipeline, Doc | None, Doc, int, dict[str, Any]], None]
    not_found: str  # the NotFound message for an unknown id, `{}` standing for the id


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def put(
    pipe: Pipeline,
    kind: Kind,
    before: Doc | None,
    after: Doc,
    now_ms: int,
    meta: dict[str, Any] | None = None,
) -> None:
    """The commands that store a document and everything derived from it, for a MULTI."""
    record_id = after[kind.id_field]
    after["updated_at"] = clock.iso(now_ms)
    pipe.hset(kind.docs, record_id, dumps(after))
    pipe.hset(kind.summaries, record_id, dumps(kind.summarize(after)))
    store.hset_fields(pipe, kind.scalar_key(record_id), kind.scalars(after, now_ms))
    kind.index(pipe, before, after, now_ms, meta or {})


def get(r: Redis, kind: Kind, record_id: str) -> Doc | None:
    raw = store.hget(r, kind.docs, record_id)
    return json.loads(raw) if raw else None


def raw(r: Redis, kind: Kind, record_id: str) -> str | None:
    """The stored document, already JSON (routes answer with it as is)."""
    return store.hget(r, kind.docs, record_id)


def raw_many(
    r: Redis, kind: Kind, ids: list[str], *, summary: bool, keep_missing: bool = False
) -> list[str | None]:
    """Stored JSON of these records (summaries or documents), in order; missing ones dropped
    unless `keep_missing` (then None in their place)."""
    values = store.hmget(r, kind.summaries if summary else kind.docs, ids)
    return values if keep_missing else [v for v in values if v]


def raw_chunks(
    r: Redis, kind: Kind, ids: list[str], *, summary: bool, size: int = 500
) -> Iterator[list[str | None]]:
    """Stored JSON of these records, a chunk at a time (a long list is streamed, not held)."""
    for start in range(0, len(ids), size):
        yield raw_many(r, kind, ids[start : start + size], summary=summary)


Rule = Callable[[Doc, Pipeline], Write | None]


def mutate(
    r: Redis, kind: Kind, record_id: str, rule: Rule, now_ms: int, *watch: str
) -> tuple[Doc, Write | None]:
    """Apply `rule` atomically: it edits the document in place and returns a Write, or None to
    write nothing, or raises a StateError to refuse. It may read other keys through the pipe
    (still in immediate mode; `watch` lists keys to WATCH from the start). Returns the document
    as the rule left it and its Write. NotFound for an unknown record."""

    def txn(pipe: Pipeline) -> tuple[Doc, Write | None]:
        stored = store.hget(pipe, kind.docs, record_id)
        if stored is None:
            raise NotFound(kind.not_found.format(record_id))
        before = json.loads(stored)
        after = json.loads(stored)
        write = rule(after, pipe)
        if write is None:
            return after, None
        pipe.multi()
        put(pipe, kind, before, after, now_ms, write.meta)
        if write.extra is not None:
            write.extra(pipe)
        return after, write

    result: tuple[Doc, Write | None] = store.transaction(r, txn, kind.scalar_key(record_id), *watch)
    return result
