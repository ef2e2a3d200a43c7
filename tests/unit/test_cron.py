"""Cron parsing and next-fire calculation, including DST gaps and overlaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatchyard.state.cron import Cron, CronError, next_after, parse, validate, zone

UTC_ZONE = ZoneInfo("UTC")
NY = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(expr: str, after: datetime, count: int, tz: ZoneInfo | None = None) -> list[datetime]:
    cron, tz = parse(expr), tz or UTC_ZONE
    out: list[datetime] = []
    for _ in range(count):
        after = next_after(cron, after, tz)
        out.append(after)
    return out


# --- parsing ---------------------------------------------------------------------------------


def test_star_expands_to_the_whole_range():
    c = parse("* * * * *")
    assert c.minutes == frozenset(range(60))
    assert c.hours == frozenset(range(24))
    assert c.days == frozenset(range(1, 32))
    assert c.months == frozenset(range(1, 13))
    assert c.weekdays == frozenset(range(7))
    assert not c.dom_restricted
    assert not c.dow_restricted


def test_expr_is_kept_stripped():
    assert parse("  5 4 * * *\n").expr == "5 4 * * *"


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("7", {7}),
        ("1,2,40", {1, 2, 40}),
        ("10-13", {10, 11, 12, 13}),
        ("*/15", {0, 15, 30, 45}),
        ("10-30/10", {10, 20, 30}),
        ("50/4", {50, 54, 58}),
        ("1-3,5,*/20", {0, 1, 2, 3, 5, 20, 40}),
        ("*/100", {0}),
        ("0-59/59", {0, 59}),
    ],
)
def test_minute_field_forms(field: str, expected: set[int]):
    assert parse(f"{field} * * * *").minutes == frozenset(expected)


def test_each_field_lands_in_its_slot():
    c = parse("1 2 3 4 5")
    assert (c.minutes, c.hours, c.days, c.months, c.weekdays) == (
        {1},
        {2},
        {3},
        {4},
        {5},
    )
    assert c.dom_restricted
    assert c.dow_restricted


def test_steps_in_other_fields():
    c = parse("0 */6 1/10 */3 1-5/2")
    assert c.hours == {0, 6, 12, 18}
    assert c.days == {1, 11, 21, 31}
    assert c.months == {1, 4, 7, 10}
    assert c.weekdays == {1, 3, 5}


def test_zero_and_seven_both_mean_sunday():
    assert parse("0 0 * * 0").weekdays == {0}
    assert parse("0 0 * * 7").weekdays == {0}
    assert parse("0 0 * * 5-7").weekdays == {5, 6, 0}
    assert parse("0 0 * * 0,7").weekdays == {0}
    assert parse("0 0 * * */2").weekdays == {0, 2, 4, 6}


def test_month_and_weekday_names_case_insensitive():
    c = parse("0 0 * JAN-mar,Dec Mon-FRI")
    assert c.months == {1, 2, 3, 12}
    assert c.weekdays == {1, 2, 3, 4, 5}
    assert parse("0 0 * * sun").weekdays == {0}
    assert parse("0 0 * * sat,SUN").weekdays == {6, 0}


def test_restricted_means_field_text_is_not_exactly_star():
    assert parse("0 0 */1 * *").dom_restricted
    assert parse("0 0 1-31 * *").dom_restricted
    assert parse("0 0 * * */1").dow_restricted
    assert parse("0 0 * * 0-7").dow_restricted
    assert not parse("0 0 * 5 *").dom_restricted


@pytest.mark.parametrize(
    ("alias", "equivalent"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_aliases(alias: str, equivalent: str):
    got, want = parse(alias), parse(equivalent)
    assert got.expr == alias
    assert {**vars(got), "expr": None} == {**vars(want), "expr": None}


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("* * * *", "5 fields"),
        ("* * * * * *", "5 fields"),
        ("60 * * * *", "minute field: 60 out of range"),
        ("* 24 * * *", "hour field: 24 out of range"),
        ("* * 0 * *", "day-of-month field: 0 out of range"),
        ("* * 32 * *", "day-of-month field: 32 out of range"),
        ("* * * 0 *", "month field: 0 out of range"),
        ("* * * 13 *", "month field: 13 out of range"),
        ("* * * * 8", "day-of-week field: 8 out of range"),
        ("0-60 * * * *", "out of range"),
        ("5-1 * * * *", "reversed range"),
        ("* * * dec-jan *", "reversed range"),
        ("*/0 * * * *", "step must be a positive integer"),
        ("*/-1 * * * *", "step must be a positive integer"),
        ("*/x * * * *", "step must be a positive integer"),
        ("*/ * * * *", "step must be a positive integer"),
        ("*/2/3 * * * *", "step must be a positive integer"),
        ("1,,2 * * * *", "empty list item"),
        (",1 * * * *", "empty list item"),
        ("1, * * * *", "empty list item"),
        ("a * * * *", "invalid value"),
        ("1.5 * * * *", "invalid value"),
        ("-1 * * * *", "invalid value"),
        ("1- * * * *", "invalid value"),
        ("1-2-3 * * * *", "invalid value"),
        ("/5 * * * *", "invalid value"),
        ("\u00b2 * * * *", "invalid value"),
        ("jan * * * *", "minute field: invalid value"),
        ("* * * mon *", "month field: invalid value"),
        ("* * * * funday", "day-of-week field: invalid value"),
        ("@reboot", "unknown cron alias"),
        ("@every 5m", "unknown cron alias"),
    ],
)
def test_invalid_expressions(expr: str, message: str):
    with pytest.raises(CronError, match=message):
        parse(expr)


def test_cron_error_is_a_value_error():
    assert issubclass(CronError, ValueError)


# --- next_after in UTC -----------------------------------------------------------------------


def test_every_minute():
    assert fires("* * * * *", utc(2024, 1, 1, 10, 0), 3) == [
        utc(2024, 1, 1, 10, 1),
        utc(2024, 1, 1, 10, 2),
        utc(2024, 1, 1, 10, 3),
    ]


def test_seconds_are_dropped_and_result_is_utc():
    got = next_after(parse("* * * * *"), utc(2024, 1, 1, 10, 0, 30), zone(None))
    assert got == utc(2024, 1, 1, 10, 1)
    assert got.tzinfo is UTC
    assert got.second == 0
    assert got.microsecond == 0


def test_every_fifteen_minutes():
    assert fires("*/15 * * * *", utc(2024, 1, 1, 10, 7), 4) == [
        utc(2024, 1, 1, 10, 15),
        utc(2024, 1, 1, 10, 30),
        utc(2024, 1, 1, 10, 45),
        utc(2024, 1, 1, 11, 0),
    ]


def test_strictly_after_a_fire_time():
    cron = parse("*/15 * * * *")
    assert next_after(cron, utc(2024, 1, 1, 10, 15), UTC_ZONE) == utc(2024, 1, 1, 10, 30)
    just_before = utc(2024, 1, 1, 10, 15) - timedelta(microseconds=1)
    assert next_after(cron, just_before, UTC_ZONE) == utc(2024, 1, 1, 10, 15)


def test_hourly_rolls_over_hour_and_day():
    assert fires("5 * * * *", utc(2024, 1, 1, 10, 30), 1) == [utc(2024, 1, 1, 11, 5)]
    assert fires("0 * * * *", utc(2024, 1, 1, 23, 0), 1) == [utc(2024, 1, 2, 0, 0)]


def test_month_end_rollover_skips_short_months():
    assert fires("0 0 31 * *", utc(2024, 4, 1), 3) == [
        utc(2024, 5, 31),
        utc(2024, 7, 31),
        utc(2024, 8, 31),
    ]


def test_year_end_rollover():
    assert fires("0 0 1 1 *", utc(2024, 12, 31, 23, 59, 59), 1) == [utc(2025, 1, 1)]
    assert fires("59 23 31 12 *", utc(2024, 12, 31, 23, 59), 1) == [utc(2025, 12, 31, 23, 59)]


def test_months_are_skipped_to_the_next_allowed_one():
    assert fires("30 6 * 3,9 *", utc(2024, 3, 31, 7), 2) == [
        utc(2024, 9, 1, 6, 30),
        utc(2024, 9, 2, 6, 30),
    ]


def test_feb_29_only_in_leap_years():
    assert fires("0 0 29 2 *", utc(2023, 1, 1), 3) == [
        utc(2024, 2, 29),
        utc(2028, 2, 29),
        utc(2032, 2, 29),
    ]
    # 2100 is not a leap year: the longest gap the calendar can produce.
    assert fires("0 0 29 2 *", utc(2096, 3, 1), 1) == [utc(2104, 2, 29)]


def test_after_in_another_timezone_is_compared_as_an_instant():
    tokyo_noon = datetime(2024, 1, 1, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 03:00Z
    assert next_after(parse("0 * * * *"), tokyo_noon, UTC_ZONE) == utc(2024, 1, 1, 4)


def test_naive_after_is_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        next_after(parse("* * * * *"), datetime(2024, 1, 1), UTC_ZONE)


def test_never_firing_cron_raises_instead_of_looping():
    with pytest.raises(CronError, match="never fires"):
        next_after(parse("0 0 30 2 *"), utc(2024, 1, 1), UTC_ZONE)


# --- day-of-month / day-of-week --------------------------------------------------------------
# January 2024: the 1st is a Monday, Fridays are 5, 12, 19, 26 and the 13th is a Saturday.


def test_dom_and_dow_both_restricted_match_either():
    assert fires("0 0 13 * 5", utc(2024, 1, 1), 5) == [
        utc(2024, 1, 5),
        utc(2024, 1, 12),
        utc(2024, 1, 13),
        utc(2024, 1, 19),
        utc(2024, 1, 26),
    ]


def test_only_dow_restricted():
    assert fires("0 0 * * 5", utc(2024, 1, 1), 2) == [utc(2024, 1, 5), utc(2024, 1, 12)]
    assert fires("0 0 * * 7", utc(2024, 1, 1), 2) == [utc(2024, 1, 7), utc(2024, 1, 14)]
    assert fires("0 9 * * 1-5", utc(2024, 1, 5, 10), 2) == [utc(2024, 1, 8, 9), utc(2024, 1, 9, 9)]


def test_only_dom_restricted():
    assert fires("0 0 13 * *", utc(2024, 1, 1), 2) == [utc(2024, 1, 13), utc(2024, 2, 13)]


def test_star_step_dom_counts_as_restricted_for_the_or_rule():
    # "*/1" selects every day, so OR-ing with Fridays still fires daily.
    assert fires("0 0 */1 * 5", utc(2024, 1, 1), 2) == [utc(2024, 1, 2), utc(2024, 1, 3)]


def test_feb_29_or_monday_fires_on_mondays():
    assert fires("0 0 29 2 1", utc(2023, 2, 1), 2) == [utc(2023, 2, 6), utc(2023, 2, 13)]


def test_weekly_alias_fires_on_sundays():
    assert fires("@weekly", utc(2024, 1, 1), 1) == [utc(2024, 1, 7)]


# --- timezones and DST -----------------------------------------------------------------------


def test_paris_winter_and_summer_offsets():
    cron = parse("0 9 * * *")
    assert next_after(cron, utc(2024, 1, 15), PARIS) == utc(2024, 1, 15, 8)
    assert next_after(cron, utc(2024, 7, 15), PARIS) == utc(2024, 7, 15, 7)


def test_new_york_spring_forward_skips_the_missing_time():
    # 2024-03-10: clocks jump from 02:00 EST to 03:00 EDT, so 02:30 does not exist that day.
    after = utc(2024, 3, 9, 8)  # 03:00 EST on the 9th, after that day's 02:30
    assert fires("30 2 * * *", after, 2, NY) == [
        utc(2024, 3, 11, 6, 30),  # 02:30 EDT on the 11th
        utc(2024, 3, 12, 6, 30),
    ]


def test_new_york_spring_forward_hourly_has_no_two_oclock():
    assert fires("0 * * * *", utc(2024, 3, 10, 5, 30), 3, NY) == [
        utc(2024, 3, 10, 6),  # 01:00 EST
        utc(2024, 3, 10, 7),  # 03:00 EDT
        utc(2024, 3, 10, 8),  # 04:00 EDT
    ]


def test_new_york_fall_back_fires_repeated_time_once():
    # 2024-11-03: clocks fall back from 02:00 EDT to 01:00 EST, so 01:30 happens twice.
    assert fires("30 1 * * *", utc(2024, 11, 3), 2, NY) == [
        utc(2024, 11, 3, 5, 30),  # first 01:30, EDT
        utc(2024, 11, 4, 6, 30),  # next day, 01:30 EST
    ]


def test_new_york_fall_back_second_pass_does_not_fire():
    second_pass = datetime(2024, 11, 3, 1, 10, fold=1, tzinfo=NY)  # 06:10Z, 01:10 EST
    assert next_after(parse("30 1 * * *"), second_pass, NY) == utc(2024, 11, 4, 6, 30)


def test_new_york_fall_back_hourly_fires_one_oclock_once():
    assert fires("0 * * * *", utc(2024, 11, 3, 3, 30), 4, NY) == [
        utc(2024, 11, 3, 4),  # 00:00 EDT
        utc(2024, 11, 3, 5),  # 01:00 EDT; 06:00Z is 01:00 EST again and is skipped
        utc(2024, 11, 3, 7),  # 02:00 EST
        utc(2024, 11, 3, 8),  # 03:00 EST
    ]


def test_new_york_fall_back_quarter_hours_skip_the_repeated_hour():
    got = fires("*/15 * * * *", utc(2024, 11, 3, 4, 50), 6, NY)
    assert got == [
        utc(2024, 11, 3, 5, 0),
        utc(2024, 11, 3, 5, 15),
        utc(2024, 11, 3, 5, 30),
        utc(2024, 11, 3, 5, 45),
        utc(2024, 11, 3, 7, 0),
        utc(2024, 11, 3, 7, 15),
    ]


def test_kolkata_half_hour_offset():
    tz = zone("Asia/Kolkata")
    assert next_after(parse("0 0 * * *"), utc(2024, 1, 1), tz) == utc(2024, 1, 1, 18, 30)


def test_local_date_decides_the_day_fields():
    # 23:00Z on Thursday 2024-01-04 is already Friday in Tokyo.
    tokyo = zone("Asia/Tokyo")
    assert next_after(parse("30 8 * * 5"), utc(2024, 1, 4, 22), tokyo) == utc(2024, 1, 4, 23, 30)


# --- zone() ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [None, ""])
def test_zone_defaults_to_utc(name: str | None):
    tz = zone(name)
    assert tz == ZoneInfo("UTC")
    assert datetime(2024, 6, 1, tzinfo=tz).utcoffset() == timedelta(0)


def test_zone_accepts_iana_names():
    assert zone("Asia/Kolkata").key == "Asia/Kolkata"
    assert zone("Europe/Paris").key == "Europe/Paris"


@pytest.mark.parametrize("name", ["Mars/Olympus", "America", "../etc/passwd", "/etc/localtime"])
def test_zone_rejects_unknown_names(name: str):
    with pytest.raises(CronError, match=f"unknown timezone: {name}"):
        zone(name)


# --- validate() ------------------------------------------------------------------------------


@pytest.mark.parametrize("expr", ["0 0 30 2 *", "0 0 31 11 *", "0 0 31 4 *", "0 0 30,31 2 *"])
def test_validate_rejects_expressions_that_never_fire(expr: str):
    with pytest.raises(CronError, match="never fires"):
        validate(expr)


@pytest.mark.parametrize(
    "expr",
    ["*/5 * * * *", "0 0 29 2 *", "0 0 31 * *", "0 0 30 2 1", "0 0 31 4,5 *", "@monthly"],
)
def test_validate_returns_the_parsed_cron(expr: str):
    cron = validate(expr, "Europe/Paris")
    assert isinstance(cron, Cron)
    assert cron == parse(expr)


def test_validate_checks_the_timezone():
    with pytest.raises(CronError, match="unknown timezone: Mars/Olympus"):
        validate("0 0 * * *", "Mars/Olympus")


def test_validate_reports_parse_errors():
    with pytest.raises(CronError, match="minute field"):
        validate("61 * * * *")


# --- the croniter wrapper --------------------------------------------------------------------
# croniter finds the next matching wall time; our grammar, OR rule and DST rule sit on top.


@pytest.mark.parametrize(
    "expr", ["* * L * *", "* * 15W * *", "* * ? * *", "* * * * 1#2", "H * * * *"]
)
def test_croniter_only_syntax_is_rejected(expr: str):
    with pytest.raises(CronError, match="invalid value"):
        parse(expr)


def test_equal_range_is_one_value_not_croniters_whole_cycle():
    assert fires("1-1 * * * *", utc(2024, 1, 1, 10), 2) == [
        utc(2024, 1, 1, 10, 1),
        utc(2024, 1, 1, 11, 1),
    ]
    assert fires("0 9 * * mon-mon", utc(2024, 1, 1, 10), 2) == [
        utc(2024, 1, 8, 9),
        utc(2024, 1, 15, 9),
    ]


def test_day_of_month_no_selected_month_has_leaves_the_weekdays():
    assert fires("0 0 30 2 1", utc(2024, 1, 1), 2) == [utc(2024, 2, 5), utc(2024, 2, 12)]
    assert fires("0 0 31 4 5", utc(2024, 1, 1), 2) == [utc(2024, 4, 5), utc(2024, 4, 12)]


def test_havana_spring_forward_at_midnight_skips_that_midnight():
    # 2024-03-10: Havana jumps from 00:00 CST to 01:00 CDT, so that day has no midnight.
    assert fires("0 0 * * *", utc(2024, 3, 8, 12), 3, ZoneInfo("America/Havana")) == [
        utc(2024, 3, 9, 5),  # 00:00 CST
        utc(2024, 3, 11, 4),  # 00:00 CDT
        utc(2024, 3, 12, 4),
    ]


def test_lord_howe_half_hour_gap_is_skipped():
    # 2024-10-06: Lord Howe jumps from 02:00 to 02:30, so 02:15 does not exist that day.
    assert fires("15 2 * * *", utc(2024, 10, 4), 2, ZoneInfo("Australia/Lord_Howe")) == [
        utc(2024, 10, 4, 15, 45),  # 02:15 +10:30 on the 5th
        utc(2024, 10, 6, 15, 15),  # 02:15 +11:00 on the 7th
    ]


def test_apia_skipped_whole_day_is_skipped():
    # Samoa crossed the date line in 2011: 2011-12-29 was followed by 2011-12-31.
    assert fires("0 12 * * *", utc(2011, 12, 29), 2, ZoneInfo("Pacific/Apia")) == [
        utc(2011, 12, 29, 22),  # 12:00 -10:00 on the 29th
        utc(2011, 12, 30, 22),  # 12:00 +14:00 on the 31st
    ]
