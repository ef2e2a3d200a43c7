"""Scheduled messages in Redis (the /schedules API, docs/api.md), with the rules of
`state/schedule_rules.py` applied atomically.

A schedule is one JSON record under its own key, `schedule:{id}`, which every change writes and
every transaction WATCHes. Pending schedules are indexed by their next fire time, in all
(`schedules:pending`: what the scheduler tick reads and the list orders by) and per sender
(`schedules:from:{from_peer}`). A record is small and flat, so there is no summary copy as
jobs and templates keep; and a one-shot that fired expires on its own key, which a record in a
shared hash of documents could not.

Firing is two steps. Claiming a due time is one transaction: only if the schedule still waits
for exactly that due time is it moved past it (recurring: to the next time; one-shot: `fired`),
so whatever runs a due time twice fires it once. Delivering comes after the claim, outside it;
then the outcome is recorded with the fire's trace stage and event in one MULTI.
"""

from __future__ import annotations

import json
from typing import Any, cast

from dispatchyard.state import events, keys, schedule_rules, store, traces
from dispatchyard.state.clock import iso
from dispatchyard.state.documents import dumps
from dispatchyard.state.schedule_rules import Outcome, ScheduleDoc
from dispatchyard.state.store import Pipeline, Redis

# How long a fired one-shot stays readable (GET /schedules/{id}) as the record of its fire, by
# default (the tick passes the retention setting).
FIRED_KEPT_MS = 7 * 24 * 3600 * 1000
# A recurring schedule adds two trace stages a fire under its id; the trace keeps the newest.
TRACE_KEPT = 200


def _put(pipe: Pipeline, doc: ScheduleDoc, kept_ms: int = FIRED_KEPT_MS) -> None:
    """The commands that store a record and keep its indexes, for the caller's MULTI."""
    schedule_id = doc["schedule_id"]
    due = schedule_rules.due_ms(doc)
    if due is None:
        # Fired: kept `kept_ms` as a record, in no index (nothing waits for it any more).
        pipe.set(keys.schedule(schedule_id), dumps(doc), px=max(1, kept_ms))
        pipe.zrem(keys.SCHEDULES_PENDING, schedule_id)
        pipe.zrem(keys.schedules_from(doc["from_peer"]), schedule_id)
    else:
        pipe.set(keys.schedule(schedule_id), dumps(doc))
        pipe.zadd(keys.SCHEDULES_PENDING, {schedule_id: due})
        pipe.zadd(keys.schedules_from(doc["from_peer"]), {schedule_id: due})


def _read(pipe: Pipeline | Redis, schedule_id: str) -> ScheduleDoc | None:
    raw = store.get(pipe, keys.schedule(schedule_id))
    return cast(ScheduleDoc, json.loads(raw)) if raw else None


def create(r: Redis, doc: ScheduleDoc) -> ScheduleDoc:
    """Store a new schedule (from schedule_rules.new_doc). Its random id is taken only if no
    record holds it; on the (4-billion-to-one) clash a new id is drawn."""
    while True:

        def txn(pipe: Pipeline) -> bool:
            if pipe.exists(keys.schedule(doc["schedule_id"])):
                return False
            pipe.multi()
            _put(pipe, doc)
            return True

        if store.transaction(r, txn, keys.schedule(doc["schedule_id"])):
            return doc
        doc["schedule_id"] = schedule_rules.new_id()


def get(r: Redis, schedule_id: str) -> ScheduleDoc | None:
    """A schedule, pending or (for a while) fired; None when unknown."""
    return _read(r, schedule_id)


def list_pending(r: Redis, from_peer: str | None = None) -> list[ScheduleDoc]:
    """The schedules that will still fire, by next fire time (then id), all or one sender's."""
    index = keys.SCHEDULES_PENDING if from_peer is None else keys.schedules_from(from_peer)
    ids = store.zrange(r, index)
    if not ids:
        return []
    raws = cast(list[str | None], r.mget([keys.schedule(i) for i in ids]))
    return [json.loads(raw) for raw in raws if raw]


def delete(r: Redis, schedule_id: str) -> ScheduleDoc | None:
    """Cancel a pending schedule; None when there is none (unknown, or a one-shot that already
    fired: nothing is left to cancel). Racing a fire, exactly one of the two wins."""

    def txn(pipe: Pipeline) -> ScheduleDoc | None:
        doc = _read(pipe, schedule_id)
        if doc is None or schedule_rules.due_ms(doc) is None:
            return None
        pipe.multi()
        pipe.delete(keys.schedule(schedule_id))
        pipe.zrem(keys.SCHEDULES_PENDING, schedule_id)
        pipe.zrem(keys.schedules_from(doc["from_peer"]), schedule_id)
        return doc

    result: ScheduleDoc | None = store.transaction(r, txn, keys.schedule(schedule_id))
    return result


def due(r: Redis, now_ms: int, batch: int = 5000) -> list[tuple[str, int]]:
    """Pending schedules due by `now_ms`, with the due time each waits for, earliest first."""
    rows = store.zrangebyscore_scored(r, keys.SCHEDULES_PENDING, "-inf", now_ms, batch)
    return [(schedule_id, int(score)) for schedule_id, score in rows]


def claim(
    r: Redis, schedule_id: str, due_ms: int, now_ms: int, kept_ms: int = FIRED_KEPT_MS
) -> ScheduleDoc | None:
    """Claim due time `due_ms` of a schedule for firing (schedule_rules.claim) and record the
    `dispatched` trace stage in the same MULTI; a one-shot that fires is kept `kept_ms`. The
    schedule as claimed, or None when it no longer waits for that due time (already fired,
    deleted, not yet due): then nothing is written and nothing must be delivered."""

    def txn(pipe: Pipeline) -> ScheduleDoc | None:
        doc = _read(pipe, schedule_id)
        if doc is None:
            # An index entry whose record is gone (removed by hand): drop it, or every tick
            # would find it due again.
            pipe.multi()
            pipe.zrem(keys.SCHEDULES_PENDING, schedule_id)
            return None
        if not schedule_rules.claim(doc, due_ms, now_ms):
            return None
        pipe.multi()
        _put(pipe, doc, kept_ms)
        _trace(
            pipe,
            schedule_id,
            "dispatched",
            now_ms,
            ok=True,
            due_at=iso(due_ms),
            fire_count=doc["fire_count"],
            kind=doc["kind"],
        )
        return doc

    claimed: ScheduleDoc | None = store.transaction(r, txn, keys.schedule(schedule_id))
    return claimed


def record_outcome(r: Redis, claimed: ScheduleDoc, result: Outcome, now_ms: int) -> None:
    """Record how the delivery of a claimed fire went: on the schedule (unless it was deleted
    or fired again meanwhile), as a trace stage under its id and as a `schedule_fired` event,
    in one MULTI."""
    schedule_id = claimed["schedule_id"]
    failed = result["status"] == "failed"
    event: dict[str, object] = {
        "schedule_id": schedule_id,
        "from_peer": claimed["from_peer"],
        "to_peer": claimed["to_peer"],
        "kind": claimed["kind"],
        "fire_count": claimed["fire_count"],
        **result,
    }

    def txn(pipe: Pipeline) -> None:
        doc = _read(pipe, schedule_id)
        recorded = doc is not None and schedule_rules.record_outcome(
            doc, claimed["fire_count"], result, now_ms
        )
        pipe.multi()
        if doc is not None and recorded:
            if schedule_rules.due_ms(doc) is None:
                # A fired one-shot's record keeps the expiry its claim gave it.
                pipe.set(keys.schedule(schedule_id), dumps(doc), keepttl=True)
            else:
                pipe.set(keys.schedule(schedule_id), dumps(doc))
        detail = {k: v for k, v in result.items() if k != "status" and v is not None}
        stage = "delivery_failed" if failed else "delivered"
        _trace(pipe, schedule_id, stage, now_ms, ok=not failed, outcome=result["status"], **detail)
        events.append(pipe, "schedule_fired", now_ms, event)

    store.transaction(r, txn, keys.schedule(schedule_id))


def _trace(pipe: Pipeline, schedule_id: str, name: str, now_ms: int, **detail: Any) -> None:
    traces.stage(pipe, schedule_id, name, now_ms, **detail)
    pipe.ltrim(keys.trace(schedule_id), -TRACE_KEPT, -1)
