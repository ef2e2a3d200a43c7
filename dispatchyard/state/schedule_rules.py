"""The rules of scheduled messages (`sched-*`, the /schedules API in docs/api.md) as pure functions:
a schedule from a create request, its next fire time, what claiming one due time does to it, and the
delivery outcome recorded after. No Redis: `state/schedules.py` applies them.

A schedule is `pending` while it has a due time to wait for. A recurring one stays `pending`
for ever (each claimed due time moves `fire_at` to the next); a one-shot becomes `fired` when its
one due time is claimed, and is kept a while as the record of that fire.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NotRequired, TypedDict

from dispatchyard.state import cron
from dispatchyard.state.clock import iso, parse_ms
from dispatchyard.state.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    StateError,
    Unavailable,
)


class DeliveryError(TypedDict):
    """A failed delivery's `error`: the HTTP status the same failure answers, and its detail."""

    code: int
    detail: Any  # a StateError's detail: its message, or the object the wire wants


class Outcome(TypedDict):
    """How one fire went (`last_outcome`): `firing` from its claim until its delivery is
    recorded, then `sent`, `queued` or `failed`."""

    status: str
    due_at: str
    delivery_id: NotRequired[str]
    correlation_id: NotRequired[str]
    error: NotRequired[DeliveryError | None]  # set by `outcome`, absent while firing


class ScheduleDoc(TypedDict):
    """A schedule, as stored and as the /schedules routes answer it."""

    schedule_id: str
    from_peer: str
    to_peer: str
    text: str
    fire_at: str  # the due time it waits for (a fired one-shot: the one it had)
    kind: str  # ask or notify
    circle: str | None
    cron: str | None  # None for a one-shot
    timezone: str
    created_at: str
    state: str  # pending or fired
    fire_count: int
    last_fired_at: str | None
    last_due_at: str | None
    last_outcome: Outcome | None
    updated_at: str


KINDS = ("ask", "notify")  # sorted: repowire's message lists them sorted
PENDING = "pending"
FIRED = "fired"
# `last_outcome.status` between claiming a due time and recording how its delivery went: a fire
# whose worker died in between stays visibly `firing` (it is never delivered a second time).
FIRING = "firing"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ScheduleError(Invalid):
    """A create request the contract refuses (400); the message is the answer's detail."""


# The `code` a failed delivery records, by why it failed (the status the same failure answers
# over HTTP, as repowire records it).
DELIVERY_ERROR_CODES: dict[type[StateError], int] = {
    NotFound: 404,
    Conflict: 409,
    Forbidden: 403,
    Unavailable: 503,
}


def delivery_error(refused: StateError) -> DeliveryError:
    """The `error` {code, detail} of a delivery that failed with `refused`."""
    code = next(c for cls, c in DELIVERY_ERROR_CODES.items() if isinstance(refused, cls))
    return {"code": code, "detail": refused.detail}


def new_id() -> str:
    return f"sched-{secrets.token_hex(4)}"


def parse_fire_at(raw: str) -> int:
    """An ISO-8601 time -> epoch ms; a naive time is UTC (as repowire)."""
    try:
        dt = datetime.fromisoformat(raw)
    except ValueError as e:
        raise ScheduleError(f"fire_at must be ISO-8601: {e}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        # Integer arithmetic: float seconds * 1000 would turn .123 into 122 ms.
        ms = (dt - _EPOCH) // timedelta(milliseconds=1)
        # What the schedule answers with must be writable back (year 1..9999 in UTC).
        iso(ms)
    except (OverflowError, ValueError, OSError):
        raise ScheduleError("fire_at is out of range") from None
    return ms


def normalize_cron(expr: str) -> str:
    """Whitespace collapsed, as repowire stores it (aliases stay as written, as templates)."""
    return " ".join(expr.split())


def next_fire_ms(expr: str, timezone: str | None, after_ms: int) -> int:
    """The first fire time of `expr` in `timezone` strictly after `after_ms`."""
    after = datetime.fromtimestamp(after_ms / 1000, tz=UTC)
    fire = cron.next_after(cron.parse(expr), after, cron.zone(timezone))
    return int(fire.timestamp() * 1000)


def new_doc(request: Mapping[str, Any], now_ms: int) -> ScheduleDoc:
    """A pending schedule from a create request's fields (from_peer, to_peer, text, fire_at or
    cron, timezone, kind, circle); raises ScheduleError with the 400's detail. Checked in
    repowire's order: exactly one of fire_at/cron, the time, then the kind."""
    fire_at, expr = request.get("fire_at"), request.get("cron")
    if (fire_at is None) == (expr is None):
        raise ScheduleError("provide exactly one of fire_at or cron")
    timezone = request.get("timezone") or "UTC"
    try:
        cron.zone(timezone)
        if fire_at is not None:
            due_ms = parse_fire_at(fire_at)
        else:
            assert expr is not None  # exactly one of the two was given
            expr = normalize_cron(expr)
            cron.validate(expr, timezone)
            due_ms = next_fire_ms(expr, timezone, now_ms)
    except cron.CronError as e:
        raise ScheduleError(str(e)) from None
    kind = request.get("kind", "notify")
    if kind not in KINDS:
        raise ScheduleError(f"kind must be one of {sorted(KINDS)}; got {kind!r}")
    now = iso(now_ms)
    return {
        "schedule_id": new_id(),
        "from_peer": request["from_peer"],
        "to_peer": request["to_peer"],
        "text": request["text"],
        "fire_at": iso(due_ms),
        "kind": kind,
        "circle": request.get("circle"),
        "cron": expr,
        "timezone": timezone,
        "created_at": now,
        "state": PENDING,
        "fire_count": 0,
        "last_fired_at": None,
        "last_due_at": None,
        "last_outcome": None,
        "updated_at": now,
    }


def due_ms(doc: ScheduleDoc) -> int | None:
    """The due time a pending schedule waits for; None once it has none."""
    return parse_ms(doc["fire_at"]) if doc["state"] == PENDING else None


def claim(doc: ScheduleDoc, due: int, now_ms: int) -> bool:
    """Take due time `due` for firing: count the fire and move the schedule past it (a
    recurring one to its next time after now — no backfill after downtime — a one-shot to
    `fired`). False, and the schedule untouched, unless it still waits for exactly `due` and
    `due` has come: the same due time claimed twice (two beats, a redelivered task, a racing
    tick) fires once."""
    if due_ms(doc) != due or now_ms < due:
        return False
    doc["fire_count"] = doc.get("fire_count", 0) + 1
    doc["last_fired_at"] = iso(now_ms)
    doc["last_due_at"] = iso(due)
    doc["last_outcome"] = {"status": FIRING, "due_at": iso(due)}
    expr = doc.get("cron")
    if expr:
        doc["fire_at"] = iso(next_fire_ms(expr, doc.get("timezone"), max(now_ms, due)))
    else:
        doc["state"] = FIRED
    doc["updated_at"] = iso(now_ms)
    return True


def outcome(
    due: int,
    *,
    status: str,
    delivery_id: str | None = None,
    correlation_id: str | None = None,
    error: DeliveryError | None = None,
) -> Outcome:
    """How one fire's delivery went: `sent` (to a live socket), `queued` (for a peer that
    polls) or `failed` with `error` {code, detail} (404 unknown peer, 409 ambiguous, 403
    circle, 503 no live connection)."""
    found: Outcome = {"status": status, "due_at": iso(due)}
    if delivery_id is not None:
        found["delivery_id"] = delivery_id
    if correlation_id is not None:
        found["correlation_id"] = correlation_id
    found["error"] = error.copy() if error is not None else None
    return found


def record_outcome(doc: ScheduleDoc, fire_count: int, result: Outcome, now_ms: int) -> bool:
    """Set the outcome of fire number `fire_count`; False when a later fire has been claimed
    meanwhile (its own outcome is the one to show)."""
    if doc.get("fire_count") != fire_count:
        return False
    doc["last_outcome"] = result
    doc["updated_at"] = iso(now_ms)
    return True
