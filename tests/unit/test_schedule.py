"""Schedule windows: days, clock times, calendars, midnight crossing, DST, and next changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filterdns.policy.schedule import (
    HORIZON_DAYS,
    Calendar,
    Window,
    format_clock,
    next_change_of,
    parse_calendar,
    parse_clock,
    parse_days,
    resolve,
)

HCM = "Asia/Ho_Chi_Minh"  # +07:00 all year
BERLIN = "Europe/Berlin"  # 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00
NEW_YORK = "America/New_York"  # 2026-03-08 02:00 -> 03:00, 2026-11-01 02:00 -> 01:00

HOLIDAYS = parse_calendar("school-holidays", ["2026-12-24..2027-01-03"])  # Thu .. Sun
SUMMER = parse_calendar("summer", ["2026-06-01..2026-08-31"])
LONG = parse_calendar("sabbatical", ["2026-01-01..2027-12-31"])


def window(days: str, start: str, end: str, calendar: Calendar | None = None) -> Window:
    return Window(
        parse_days(days.split(",")), parse_clock(start), parse_clock(end, end=True), calendar
    )


def when(text: str, zone: str = HCM) -> datetime:
    """An instant: ISO text with an offset as is, or a wall time in `zone` (first occurrence)."""
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=ZoneInfo(zone))


BEDTIME = window("sun-thu", "21:00", "06:30")  # the 9-12 band default, Sun-Thu nights
HOLIDAY_BEDTIME = window("sun-thu", "21:00", "06:30", HOLIDAYS)
SCHOOL = window("mon-fri", "07:30", "16:30", SUMMER)
NEVER = Window(frozenset(), 0, 0)
ALWAYS = Window(frozenset(range(7)), 0, 0)

# Weeks used below: 2026-11-22 is a Sunday, 2026-11-27 a Friday, 2026-11-28 a Saturday.
# id, window, zone, instant, active
ACTIVE_CASES: list[tuple[str, Window, str, str, bool]] = [
    ("midnight-sunday-23:00", BEDTIME, HCM, "2026-11-22 23:00", True),
    ("midnight-monday-03:00", BEDTIME, HCM, "2026-11-23 03:00", True),
    ("midnight-start-inclusive", BEDTIME, HCM, "2026-11-22 21:00", True),
    ("midnight-before-start", BEDTIME, HCM, "2026-11-22 20:59", False),
    ("midnight-last-minute", BEDTIME, HCM, "2026-11-23 06:29", True),
    ("midnight-end-exclusive", BEDTIME, HCM, "2026-11-23 06:30", False),
    ("midnight-monday-noon", BEDTIME, HCM, "2026-11-23 12:00", False),
    ("midnight-friday-03:00-started-thursday", BEDTIME, HCM, "2026-11-27 03:00", True),
    ("midnight-friday-21:00-not-a-start-day", BEDTIME, HCM, "2026-11-27 21:00", False),
    ("midnight-saturday-03:00-friday-not-a-start-day", BEDTIME, HCM, "2026-11-28 03:00", False),
    ("midnight-sunday-03:00-saturday-not-a-start-day", BEDTIME, HCM, "2026-11-22 03:00", False),
    ("instant-in-another-zone", BEDTIME, HCM, "2026-11-22T16:30+00:00", True),
    ("wrap-range-saturday", window("fri-mon", "10:00", "12:00"), HCM, "2026-11-28 11:00", True),
    ("wrap-range-monday", window("fri-mon", "10:00", "12:00"), HCM, "2026-11-23 11:00", True),
    ("wrap-range-tuesday", window("fri-mon", "10:00", "12:00"), HCM, "2026-11-24 11:00", False),
    ("end-24:00-last-minute", window("sat", "20:00", "24:00"), HCM, "2026-11-28 23:59", True),
    ("end-24:00-next-midnight", window("sat", "20:00", "24:00"), HCM, "2026-11-29 00:00", False),
    ("all-day-first-minute", window("sat", "00:00", "00:00"), HCM, "2026-11-28 00:00", True),
    ("all-day-last-minute", window("sat", "00:00", "00:00"), HCM, "2026-11-28 23:59", True),
    ("all-day-next-day", window("sat", "00:00", "00:00"), HCM, "2026-11-29 00:00", False),
    ("all-day-day-before", window("sat", "00:00", "00:00"), HCM, "2026-11-27 23:59", False),
    ("all-day-from-18:00-next-day", window("sat", "18:00", "18:00"), HCM, "2026-11-29 17:59", True),
    ("all-day-from-18:00-ended", window("sat", "18:00", "18:00"), HCM, "2026-11-29 18:00", False),
    ("every-day-all-day", ALWAYS, HCM, "2026-11-25 04:00", True),
    ("no-days", NEVER, HCM, "2026-11-25 04:00", False),
    # School holidays 2026-12-24 (Thu) .. 2027-01-03 (Sun), judged by the start date.
    ("calendar-school-day", SCHOOL, HCM, "2026-06-01 10:00", False),
    ("calendar-school-before", SCHOOL, HCM, "2026-05-29 10:00", True),
    ("calendar-school-after", SCHOOL, HCM, "2026-09-01 10:00", True),
    ("calendar-eve-continues-into-holiday", HOLIDAY_BEDTIME, HCM, "2026-12-24 03:00", True),
    ("calendar-holiday-evening-suppressed", HOLIDAY_BEDTIME, HCM, "2026-12-24 22:00", False),
    ("calendar-holiday-night-suppressed", HOLIDAY_BEDTIME, HCM, "2026-12-28 03:00", False),
    ("calendar-last-holiday-evening", HOLIDAY_BEDTIME, HCM, "2027-01-03 22:00", False),
    ("calendar-first-school-morning", HOLIDAY_BEDTIME, HCM, "2027-01-04 03:00", False),
    ("calendar-first-school-evening", HOLIDAY_BEDTIME, HCM, "2027-01-04 22:00", True),
    # Berlin springs forward 2026-03-29 02:00 CET -> 03:00 CEST.
    ("spring-end-in-gap-before", window("sat", "22:00", "02:30"), BERLIN,
     "2026-03-29T01:59+01:00", True),
    ("spring-end-in-gap-at-transition", window("sat", "22:00", "02:30"), BERLIN,
     "2026-03-29T03:00+02:00", False),
    ("spring-start-in-gap-at-transition", window("sun", "02:30", "04:00"), BERLIN,
     "2026-03-29T03:00+02:00", True),
    ("spring-start-in-gap-before", window("sun", "02:30", "04:00"), BERLIN,
     "2026-03-29T01:59+01:00", False),
    ("spring-window-inside-gap-empty", window("sun", "02:00", "02:45"), BERLIN,
     "2026-03-29T01:00:00+00:00", False),
    # Berlin falls back 2026-10-25 03:00 CEST -> 02:00 CET: 02:00..02:59 happen twice.
    ("fall-end-first-pass", window("sat", "21:00", "02:30"), BERLIN,
     "2026-10-25T02:29+02:00", True),
    ("fall-end-second-pass-already-ended", window("sat", "21:00", "02:30"), BERLIN,
     "2026-10-25T02:15+01:00", False),
    ("fall-start-first-pass", window("sun", "02:30", "03:30"), BERLIN,
     "2026-10-25T02:29+02:00", False),
    ("fall-start-second-pass-still-active", window("sun", "02:30", "03:30"), BERLIN,
     "2026-10-25T02:10+01:00", True),
    # New York: 2026-03-08 02:00 EST -> 03:00 EDT, 2026-11-01 02:00 EDT -> 01:00 EST.
    ("ny-spring-bedtime-last-minute", window("sat", "21:00", "06:30"), NEW_YORK,
     "2026-03-08T06:29-04:00", True),
    ("ny-spring-bedtime-ended", window("sat", "21:00", "06:30"), NEW_YORK,
     "2026-03-08T06:30-04:00", False),
    ("ny-fall-second-pass", window("sun", "01:30", "02:00"), NEW_YORK,
     "2026-11-01T01:15-05:00", True),
    ("ny-fall-before-first-pass", window("sun", "01:30", "02:00"), NEW_YORK,
     "2026-11-01T01:15-04:00", False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("sut", "zone", "at", "expected"),
    [case[1:] for case in ACTIVE_CASES],
    ids=[case[0] for case in ACTIVE_CASES],
)
def test_active(sut: Window, zone: str, at: str, expected: bool) -> None:
    assert sut.active(when(at, zone), ZoneInfo(zone)) is expected


# id, window, zone, instant, expected next change (None: nothing within the horizon)
NEXT_CASES: list[tuple[str, Window, str, str, str | None]] = [
    ("active-until-morning", BEDTIME, HCM, "2026-11-22 23:00", "2026-11-23T06:30+07:00"),
    ("at-start-boundary", BEDTIME, HCM, "2026-11-22 21:00", "2026-11-23T06:30+07:00"),
    ("at-end-boundary-strictly-after", BEDTIME, HCM, "2026-11-23 06:30",
     "2026-11-23T21:00+07:00"),
    ("a-minute-before-start", BEDTIME, HCM, "2026-11-22 20:59", "2026-11-22T21:00+07:00"),
    ("across-the-weekend", BEDTIME, HCM, "2026-11-27 06:30", "2026-11-29T21:00+07:00"),
    ("across-a-week", window("sat", "14:00", "17:00"), HCM, "2026-11-21 17:00",
     "2026-11-28T14:00+07:00"),
    ("seconds-in-instant", BEDTIME, HCM, "2026-11-22 20:59:59.5", "2026-11-22T21:00+07:00"),
    ("end-24:00", window("sat", "20:00", "24:00"), HCM, "2026-11-28 21:00",
     "2026-11-29T00:00+07:00"),
    ("touching-all-days-merge", window("sat-sun", "00:00", "00:00"), HCM, "2026-11-28 10:00",
     "2026-11-30T00:00+07:00"),
    ("touching-24:00-and-next-day", window("sat,sun", "00:00", "24:00"), HCM,
     "2026-11-28 10:00", "2026-11-30T00:00+07:00"),
    ("every-day-all-day-never", ALWAYS, HCM, "2026-11-28 10:00", None),
    ("no-days-never", NEVER, HCM, "2026-11-28 10:00", None),
    ("long-calendar-summer", SCHOOL, HCM, "2026-05-29 17:00", "2026-09-01T07:30+07:00"),
    ("calendar-beyond-horizon", window("mon-fri", "07:30", "16:30", LONG), HCM,
     "2026-06-01 12:00", None),
    ("calendar-eve-runs-into-holiday", HOLIDAY_BEDTIME, HCM, "2026-12-23 22:00",
     "2026-12-24T06:30+07:00"),
    ("calendar-next-after-holidays", HOLIDAY_BEDTIME, HCM, "2026-12-24 06:30",
     "2027-01-04T21:00+07:00"),
    ("spring-end-in-gap", window("sat", "22:00", "02:30"), BERLIN, "2026-03-28 23:00",
     "2026-03-29T03:00+02:00"),
    ("spring-start-in-gap", window("sun", "02:30", "04:00"), BERLIN, "2026-03-28 12:00",
     "2026-03-29T03:00+02:00"),
    ("spring-start-in-gap-then-end", window("sun", "02:30", "04:00"), BERLIN,
     "2026-03-29T03:00+02:00", "2026-03-29T04:00+02:00"),
    ("spring-empty-window-skipped", window("sun", "02:00", "02:45"), BERLIN, "2026-03-28 12:00",
     "2026-04-05T02:00+02:00"),
    ("spring-bedtime-is-an-hour-shorter", window("sat", "21:00", "06:30"), BERLIN,
     "2026-03-28 22:00", "2026-03-29T06:30+02:00"),
    ("fall-end-first-occurrence", window("sat", "21:00", "02:30"), BERLIN, "2026-10-24 22:00",
     "2026-10-25T02:30+02:00"),
    ("fall-start-first-occurrence", window("sun", "02:30", "03:30"), BERLIN,
     "2026-10-24 22:00", "2026-10-25T02:30+02:00"),
    ("fall-two-hours-long", window("sun", "02:30", "03:30"), BERLIN, "2026-10-25T02:40+02:00",
     "2026-10-25T03:30+01:00"),
    ("ny-spring-bedtime", window("sat", "21:00", "06:30"), NEW_YORK, "2026-03-07 22:00",
     "2026-03-08T06:30-04:00"),
    ("ny-fall-start", window("sun", "01:30", "02:00"), NEW_YORK, "2026-10-31 12:00",
     "2026-11-01T01:30-04:00"),
    ("ny-fall-end", window("sun", "01:30", "02:00"), NEW_YORK, "2026-11-01T01:45-04:00",
     "2026-11-01T02:00-05:00"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("sut", "zone", "at", "expected"),
    [case[1:] for case in NEXT_CASES],
    ids=[case[0] for case in NEXT_CASES],
)
def test_next_change(sut: Window, zone: str, at: str, expected: str | None) -> None:
    change = sut.next_change(when(at, zone), ZoneInfo(zone))
    if expected is None:
        assert change is None
    else:
        assert change == datetime.fromisoformat(expected)
        assert change is not None and change.tzinfo is UTC


def test_next_change_of_takes_the_earliest() -> None:
    at = when("2026-11-23 06:00")
    tz = ZoneInfo(HCM)
    assert next_change_of([SCHOOL, BEDTIME], at, tz) == when("2026-11-23 06:30")
    assert next_change_of([SCHOOL, NEVER], at, tz) == when("2026-11-23 07:30")
    assert next_change_of([NEVER, ALWAYS], at, tz) is None
    assert next_change_of([], at, tz) is None


@pytest.mark.parametrize(
    ("wall", "zone", "expected"),
    [
        ("2026-06-01 12:00", BERLIN, "2026-06-01T10:00+00:00"),
        ("2026-03-29 02:00", BERLIN, "2026-03-29T01:00+00:00"),
        ("2026-03-29 02:59", BERLIN, "2026-03-29T01:00+00:00"),
        ("2026-03-29 03:00", BERLIN, "2026-03-29T01:00+00:00"),
        ("2026-10-25 02:30", BERLIN, "2026-10-25T00:30+00:00"),
        ("2026-11-01 01:30", NEW_YORK, "2026-11-01T05:30+00:00"),
        ("2026-03-08 02:30", NEW_YORK, "2026-03-08T07:00+00:00"),
        ("2026-03-08 02:30", HCM, "2026-03-07T19:30+00:00"),
    ],
    ids=["normal", "gap-start", "gap-end", "after-gap", "fold", "ny-fold", "ny-gap", "no-dst"],
)
def test_resolve_wall_time(wall: str, zone: str, expected: str) -> None:
    assert resolve(datetime.fromisoformat(wall), ZoneInfo(zone)) == datetime.fromisoformat(expected)


PARSE_DAYS_CASES: list[tuple[list[str] | str, set[int]]] = [
    (["mon-fri", "sat"], {0, 1, 2, 3, 4, 5}),
    (["sun", "mon"], {6, 0}),
    (["fri-mon"], {4, 5, 6, 0}),
    (["sun-sat"], set(range(7))),
    (["mon-mon"], {0}),
    (["daily"], set(range(7))),
    (["all"], set(range(7))),
    (["weekdays"], {0, 1, 2, 3, 4}),
    (["Weekends"], {5, 6}),
    ([" Tue "], {1}),
    (["Monday", "wed - thu"], {0, 2, 3}),
    ("mon-fri", {0, 1, 2, 3, 4}),
    (["mon", "mon-tue"], {0, 1}),
]


@pytest.mark.parametrize(
    ("items", "expected"),
    PARSE_DAYS_CASES,
    ids=[items if isinstance(items, str) else "+".join(items) for items, _ in PARSE_DAYS_CASES],
)
def test_parse_days(items: list[str] | str, expected: set[int]) -> None:
    assert parse_days(items) == frozenset(expected)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["funday"], r'"funday" is not a day; valid days: mon, tue, wed, thu, fri, sat, sun'),
        (["mon-xyz"], r'"mon-xyz" is not a day'),
        (["mon-fri-sat"], r'"mon-fri-sat" is not a day'),
        ([""], r'"" is not a day'),
        ([], r"no days given; valid days: mon"),
        ([3], r"3 is not a day"),
    ],
    ids=["unknown", "bad-range-end", "three-part-range", "empty-name", "empty-list", "number"],
)
def test_parse_days_rejects(items: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_days(items)


@pytest.mark.parametrize(
    ("text", "end", "expected"),
    [
        ("21:00", False, 1260),
        ("06:30", True, 390),
        ("7:30", False, 450),
        ("00:00", False, 0),
        ("23:59", False, 1439),
        (" 12:05 ", False, 725),
        ("24:00", True, 1440),
    ],
)
def test_parse_clock(text: str, end: bool, expected: int) -> None:
    assert parse_clock(text, end=end) == expected


@pytest.mark.parametrize(
    ("text", "end", "message"),
    [
        ("25:00", False, r'"25:00" is not a time HH:MM'),
        ("24:00", False, r'"24:00" is only allowed as an end time'),
        ("24:01", True, r'"24:01" is not a time HH:MM'),
        ("12:60", False, r'"12:60" is not a time HH:MM'),
        ("1200", False, r'"1200" is not a time HH:MM'),
        ("12:5", False, r'"12:5" is not a time HH:MM'),
        ("ab:cd", False, r'"ab:cd" is not a time HH:MM'),
        ("", False, r'"" is not a time HH:MM'),
        (1260, False, r'1260 is not a time HH:MM \(write it in quotes'),
    ],
    ids=["hour-25", "24-as-start", "24:01", "minute-60", "no-colon", "one-digit-minute",
         "letters", "empty", "yaml-sexagesimal-int"],
)  # fmt: skip
def test_parse_clock_rejects(text: str, end: bool, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_clock(text, end=end)


@pytest.mark.parametrize("minutes", [0, 390, 1260, 1439, 1440])
def test_format_clock_round_trips(minutes: int) -> None:
    assert parse_clock(format_clock(minutes), end=True) == minutes


def test_parse_calendar_ranges_days_and_dates() -> None:
    sut = parse_calendar(
        "school-holidays", ["2027-02-14..2027-02-22", "2026-12-24 .. 2027-01-04", date(2026, 9, 2)]
    )
    assert sut.name == "school-holidays"
    assert sut.ranges == (
        (date(2026, 9, 2), date(2026, 9, 2)),
        (date(2026, 12, 24), date(2027, 1, 4)),
        (date(2027, 2, 14), date(2027, 2, 22)),
    )
    inside = ["2026-09-02", "2026-12-24", "2026-12-31", "2027-01-04", "2027-02-14", "2027-02-22"]
    outside = ["2026-09-01", "2026-09-03", "2026-12-23", "2027-01-05", "2027-02-23", "2025-01-01"]
    assert all(sut.contains(date.fromisoformat(day)) for day in inside)
    assert not any(sut.contains(date.fromisoformat(day)) for day in outside)
    assert parse_calendar("one", ["2026-12-25"]).ranges == ((date(2026, 12, 25),) * 2,)
    assert not parse_calendar("empty", []).contains(date(2026, 12, 25))


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["2026-13-01"], r'"2026-13-01" is not a date YYYY-MM-DD or a range'),
        (["2026-02-30"], r'"2026-02-30" is not a date'),
        (["20261224"], r'"20261224" is not a date'),
        (["2026-12-24.."], r'"2026-12-24\.\." is not a date'),
        (["2026-12-24..2027-01-04..2027-01-05"], r"is not a date"),
        (["2027-01-04..2026-12-24"], r'"2027-01-04..2026-12-24" ends before it starts'),
        ([datetime(2026, 12, 25, 8, 0)], r"is a date and time"),
        ([5], r"5 is not a date YYYY-MM-DD"),
    ],
    ids=["month-13", "feb-30", "basic-format", "open-range", "three-dates", "reversed",
         "datetime", "number"],
)  # fmt: skip
def test_parse_calendar_rejects(items: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_calendar("bad", items)


@pytest.mark.parametrize(
    ("days", "start", "end", "message"),
    [
        ({0}, 1440, 0, r"start 1440 is not a minute of the day"),
        ({0}, -1, 0, r"start -1 is not a minute of the day"),
        ({0}, 0, 1441, r"end 1441 is not a minute of the day"),
        ({7}, 0, 60, r"days \[7\] are not weekdays"),
    ],
    ids=["start-24:00", "negative-start", "end-past-24:00", "day-7"],
)
def test_window_rejects(days: set[int], start: int, end: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Window(frozenset(days), start, end)


def test_naive_instants_are_rejected() -> None:
    naive = datetime(2026, 11, 22, 23, 0)
    with pytest.raises(ValueError, match="has no time zone"):
        BEDTIME.active(naive, ZoneInfo(HCM))
    with pytest.raises(ValueError, match="has no time zone"):
        BEDTIME.next_change(naive, ZoneInfo(HCM))


def test_occurrence_reports_the_span_of_a_start_day() -> None:
    tz = ZoneInfo(HCM)
    assert BEDTIME.occurrence(date(2026, 11, 22), tz) == (
        when("2026-11-22 21:00"),
        when("2026-11-23 06:30"),
    )
    assert BEDTIME.occurrence(date(2026, 11, 27), tz) is None  # Friday: not a start day
    assert HOLIDAY_BEDTIME.occurrence(date(2026, 12, 27), tz) is None  # holiday Sunday


# Zones with DST at 02:00 (Berlin, New York), at midnight (Santiago), by 30 minutes (Lord Howe),
# and none (Ho Chi Minh City); instants cluster around their 2026 transitions.
ZONES = [BERLIN, NEW_YORK, HCM, "America/Santiago", "Australia/Lord_Howe"]
TRANSITIONS = [
    datetime.fromisoformat(text)
    for text in [
        "2026-03-29T01:00+00:00",
        "2026-10-25T01:00+00:00",
        "2026-03-08T07:00+00:00",
        "2026-11-01T06:00+00:00",
        "2026-04-05T03:00+00:00",
        "2026-09-06T04:00+00:00",
        "2026-04-04T15:00+00:00",
        "2026-10-03T15:30+00:00",
    ]
]
START_2026 = datetime(2026, 1, 1, tzinfo=UTC)

calendars = st.one_of(
    st.none(),
    st.lists(
        st.tuples(st.integers(0, 400), st.integers(0, 40)).map(
            lambda pair: (
                f"{date(2026, 1, 1) + timedelta(days=pair[0])}.."
                f"{date(2026, 1, 1) + timedelta(days=pair[0] + pair[1])}"
            )
        ),
        max_size=3,
    ).map(lambda items: parse_calendar("random", items)),
)
windows = st.builds(
    Window,
    days=st.frozensets(st.integers(0, 6)),
    start=st.integers(0, 1439),
    end=st.integers(0, 1440),
    except_calendar=calendars,
)
instants = st.one_of(
    st.builds(
        lambda base, minutes: base + timedelta(minutes=minutes),
        st.sampled_from(TRANSITIONS),
        st.integers(-3 * 1440, 3 * 1440),
    ),
    st.integers(0, 400 * 86400).map(lambda seconds: START_2026 + timedelta(seconds=seconds)),
)


@settings(max_examples=300, deadline=None)
@given(sut=windows, at=instants, zone=st.sampled_from(ZONES))
def test_next_change_is_the_first_flip(sut: Window, at: datetime, zone: str) -> None:
    tz = ZoneInfo(zone)
    state = sut.active(at, tz)
    change = sut.next_change(at, tz)
    if change is None:
        for later in (timedelta(hours=1), timedelta(days=1), timedelta(days=7)):
            assert sut.active(at + later, tz) is state
        return
    assert change > at
    assert change - at <= timedelta(days=HORIZON_DAYS + 2)
    assert change.second == 0 and change.microsecond == 0  # exact to the minute
    gap = change - at
    probes = [at + gap / 4, at + gap / 2, at + gap * 3 / 4]
    if gap > timedelta(seconds=1):
        probes.append(change - timedelta(seconds=1))
    for probe in probes:
        assert sut.active(probe, tz) is state, probe
    assert sut.active(change, tz) is not state
