"""Cron schedules: parse five-field expressions and find the next fire time in a timezone.

Parsing is ours: croniter's grammar is wider (six fields, L/W/#/H, wrapping ranges, "1-1" as the
whole cycle) and its errors do not name the field. Finding the next matching wall time is
croniter's; the timezone and DST rules on top are ours. Pure: callers supply the clock (``after``).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from dispatchyard.state.errors import Invalid


class CronError(Invalid):
    """A cron expression or timezone that cannot be used."""


@dataclass(frozen=True)
class Cron:
    expr: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    dom_restricted: bool
    dow_restricted: bool


@dataclass(frozen=True)
class _Field:
    name: str
    lo: int
    hi: int
    names: dict[str, int]


_MONTH_NAMES = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_DOW_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

_FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day-of-month", 1, 31, {}),
    _Field("month", 1, 12, _MONTH_NAMES),
    _Field("day-of-week", 0, 7, _DOW_NAMES),
)

_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


def parse(expr: str) -> Cron:
    """Parse a five-field cron expression or an ``@alias``; raise CronError naming the problem."""
    text = expr.strip()
    if not text:
        raise CronError("empty cron expression")
    body = text
    if text.startswith("@"):
        try:
            body = _ALIASES[text.lower()]
        except KeyError:
            known = ", ".join(sorted(_ALIASES))
            raise CronError(f"unknown cron alias {text!r} (known: {known})") from None
    parts = body.split()
    if len(parts) != 5:
        raise CronError(
            "cron expression needs 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(parts)} in {text!r}"
        )
    minutes, hours, days, months, weekdays = (
        _parse_field(part, field) for part, field in zip(parts, _FIELDS, strict=True)
    )
    return Cron(
        expr=text,
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        # 7 is an alias for Sunday so that ranges like 5-7 read naturally.
        weekdays=frozenset(d % 7 for d in weekdays),
        dom_restricted=parts[2] != "*",
        dow_restricted=parts[4] != "*",
    )


def _parse_field(text: str, field: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise CronError(f"{field.name} field: empty list item in {text!r}")
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not _is_number(step_text):
                raise CronError(
                    f"{field.name} field: step must be a positive integer, got {step_text!r}"
                )
            step = int(step_text)
            if step == 0:
                raise CronError(f"{field.name} field: step must be a positive integer, got 0")
        if base == "*":
            start, end = field.lo, field.hi
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _parse_value(first, field, item), _parse_value(last, field, item)
            if start > end:
                raise CronError(f"{field.name} field: reversed range {item!r}")
        else:
            start = _parse_value(base, field, item)
            # "a/n" means a..max every n; a bare "a" is just a.
            end = field.hi if slash else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _parse_value(text: str, field: _Field, item: str) -> int:
    if _is_number(text):
        value = int(text)
    elif text.lower() in field.names:
        value = field.names[text.lower()]
    else:
        raise CronError(f"{field.name} field: invalid value {text!r} in {item!r}")
    if not field.lo <= value <= field.hi:
        raise CronError(
            f"{field.name} field: {value} out of range {field.lo}-{field.hi} in {item!r}"
        )
    return value


def _is_number(text: str) -> bool:
    # str.isdigit alone accepts non-ASCII digits such as "²", which int() rejects.
    return text.isascii() and text.isdigit()


def zone(name: str | None) -> ZoneInfo:
    """Return the IANA timezone ``name`` (None or "" means UTC); raise CronError if unknown."""
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    # ValueError covers path-like keys; OSError covers keys naming a tzdata directory.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(f"unknown timezone: {name}") from None


def next_after(cron: Cron, after: datetime, tz: ZoneInfo) -> datetime:
    """Return the earliest UTC instant strictly after ``after`` whose wall time in ``tz`` matches.

    Wall times that do not exist in ``tz`` (spring-forward gap) are skipped; wall times that occur
    twice (fall-back overlap) fire once, at their first occurrence. Raise CronError if the
    expression never fires, and ValueError if ``after`` is naive.
    """
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("after must be a timezone-aware datetime")
    _check_calendar(cron)
    # croniter walks naive wall times and we place each in tz ourselves: given an aware start,
    # croniter moves a skipped 02:30 to 03:00 and fires a repeated 01:30 twice.
    walls = croniter(_croniter_expr(cron), after.astimezone(tz).replace(tzinfo=None))
    try:
        while True:
            wall: datetime = walls.get_next(datetime)
            fire = wall.replace(tzinfo=tz).astimezone(UTC)  # fold=0: the first occurrence
            if fire.astimezone(tz).replace(tzinfo=None) != wall:
                continue  # inside a spring-forward gap: this wall time never happens
            # Not after ``after`` only while ``after`` is in the second pass of a repeated
            # hour: its wall times already fired on the first pass.
            if fire > after:
                return fire
    except CroniterBadDateError:
        raise CronError(f"cron expression never fires: {cron.expr!r}") from None


def validate(expr: str, tz_name: str | None = None) -> Cron:
    """Parse ``expr``, check ``tz_name``, and prove the schedule can fire; raise CronError if not.

    The proof is calendar-exact: some allowed (month, day) exists, so it fires within any
    ~8-year window (Feb 29 is the rarest day).
    """
    cron = parse(expr)
    zone(tz_name)
    _check_calendar(cron)
    return cron


def _check_calendar(cron: Cron) -> None:
    # Every month has every weekday, so a day-of-week restriction (alone or OR-ed) always
    # matches somewhere; only a day-of-month restriction alone can rule out every date.
    if cron.dom_restricted and not cron.dow_restricted and not _some_day_exists(cron):
        raise CronError(
            f"cron expression never fires: {cron.expr!r} "
            "(no selected month has any of the selected days)"
        )


def _some_day_exists(cron: Cron) -> bool:
    # 2000 is a leap year: February has 29 days.
    return any(d <= calendar.monthrange(2000, m)[1] for m in cron.months for d in cron.days)


@lru_cache(maxsize=256)
def _croniter_expr(cron: Cron) -> str:
    # croniter only ever sees "*" or explicit value lists, so its grammar never reinterprets
    # ours; "*" for a full field also spares it expanding 60 listed minutes on every call.
    def values(field: frozenset[int], size: int = 0) -> str:
        return "*" if len(field) == size else ",".join(map(str, sorted(field)))

    # "*" keeps an unrestricted day field out of croniter's OR of the two. Under that OR a
    # day-of-month no selected month has adds no dates, so it is left out as well: croniter
    # up to 6.2 raised on it, and 7.0 searches 50 years for it on every call.
    drop_days = cron.dow_restricted and not _some_day_exists(cron)
    days = values(cron.days) if cron.dom_restricted and not drop_days else "*"
    weekdays = values(cron.weekdays) if cron.dow_restricted else "*"
    return " ".join(
        (values(cron.minutes, 60), values(cron.hours, 24), days, values(cron.months, 12), weekdays)
    )
