"""Schedule windows: weekdays plus a wall-clock window in an IANA time zone, and holiday calendars.

Pure time logic, no configuration parsing: the config loader builds `Window` and `Calendar`
values with `parse_days`, `parse_clock` and `parse_calendar`, and the policy asks
`Window.active(at, tz)` and `Window.next_change(at, tz)`.

The rules, in one place:

* Days. `parse_days` accepts day names (`mon` .. `sun`, or the full English names), ranges
  `mon-fri`, ranges that wrap around the week end (`fri-mon` = fri, sat, sun, mon), and the
  aliases `daily`/`all` (every day), `weekdays` (mon-fri) and `weekends` (sat, sun). Case and
  surrounding spaces are ignored. Weekdays are numbered like `date.weekday()`: 0 = Monday.
* Times. `"HH:MM"` (or `"H:MM"`), 00:00 to 23:59; `"24:00"` is accepted only as an end time and
  means the following midnight.
* Occurrences. A window *starts* on each of its days at `start`. It ends at `end` on the same
  day when `end > start`, otherwise (`end <= start`) it crosses midnight and ends at `end` on the
  next day; that occurrence belongs to the day it started. `start == end` means a whole day
  (24 hours of wall-clock time, from `start` to `start` the next day).
* Calendars. A window may name two calendars: `only_calendar` (occurrences start only on its
  dates) and `except_calendar` (no occurrence starts on its dates); with both, a date must be in
  `only` and not in `except`. Both are judged on an occurrence's *start date*: a window that
  crosses midnight belongs to the date it starts on. So a bedtime that started on the evening
  before a holiday runs on into the holiday morning, while a bedtime that would start on the
  last evening of the holidays does not start; an `only: exam-weeks` bedtime that starts on the
  last evening of the exams runs to its end the next morning.
* Daylight saving. Times are wall-clock times in `tz`. A wall time that does not exist (the hour
  skipped when clocks spring forward) is taken as the first valid instant after it, i.e. the
  moment of the transition. A wall time that happens twice (clocks falling back) is taken at
  its first occurrence (fold=0), for starts and ends alike: a window ends the first time the
  clock shows its end time. An occurrence that becomes empty this way (02:00-02:30 on a
  spring-forward day in Europe/Berlin) never becomes active.
* Changes. `next_change` returns the first instant strictly after `at` at which `active` flips,
  as an aware UTC datetime. Occurrences that touch (an all-day window on consecutive days) merge
  into one active stretch without a change between them. Candidate start days are scanned for
  at most `HORIZON_DAYS` days; when nothing flips within that horizon, it returns None.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_ALIASES: dict[str, frozenset[int]] = {
    "daily": frozenset(range(7)),
    "all": frozenset(range(7)),
    "weekdays": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
}
MINUTES_PER_DAY = 24 * 60
HORIZON_DAYS = 400
"""How many days after `at` next_change looks for candidate starts before giving up."""

_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$", re.ASCII)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
_VALID_DAYS = ", ".join(DAYS) + "; ranges like mon-fri or fri-mon; " + ", ".join(DAY_ALIASES)


def _day_number(name: str, item: str) -> int:
    if name in DAYS:
        return DAYS.index(name)
    if name in FULL_DAYS:
        return FULL_DAYS.index(name)
    raise ValueError(f'"{item}" is not a day; valid days: {_VALID_DAYS}')


def parse_days(items: Sequence[str] | str) -> frozenset[int]:
    """Weekday numbers (0 = Monday) named by `items`, e.g. ["mon-fri", "sat"] -> {0, .., 5}.

    A single string is taken as a one-item list. Raise ValueError naming the valid day names for
    an unknown name, and for an empty list.
    """
    if isinstance(items, str):
        items = [items]
    days: set[int] = set()
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"{item!r} is not a day; valid days: {_VALID_DAYS}")
        text = item.strip().lower()
        if text in DAY_ALIASES:
            days |= DAY_ALIASES[text]
            continue
        first, dash, last = text.partition("-")
        begin = _day_number(first.strip(), item)
        if not dash:
            days.add(begin)
            continue
        stop = _day_number(last.strip(), item)
        # A range runs forward through the week and wraps after Sunday: fri-mon = fri..sun, mon.
        days.update((begin + step) % 7 for step in range((stop - begin) % 7 + 1))
    if not days:
        raise ValueError(f"no days given; valid days: {_VALID_DAYS}")
    return frozenset(days)


def parse_clock(text: str, *, end: bool = False) -> int:
    """Minutes since midnight of "HH:MM": "21:00" -> 1260.

    "24:00" (-> 1440) is accepted only with `end=True`. Raise ValueError otherwise.
    """
    if not isinstance(text, str):
        raise ValueError(f'{text!r} is not a time HH:MM (write it in quotes, e.g. "21:00")')
    match = _CLOCK.match(text.strip())
    if match:
        hours, minutes = int(match.group(1)), int(match.group(2))
        if hours == 24 and minutes == 0:
            if end:
                return MINUTES_PER_DAY
            raise ValueError(f'"{text}" is only allowed as an end time; a start is 00:00 to 23:59')
        if hours < 24 and minutes < 60:
            return hours * 60 + minutes
    raise ValueError(f'"{text}" is not a time HH:MM (00:00 to 23:59, or 24:00 as an end)')


def format_clock(minutes: int) -> str:
    """The HH:MM form of minutes since midnight: 1260 -> "21:00", 1440 -> "24:00"."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class Calendar:
    """A named set of dates, as inclusive (first, last) ranges sorted by first date."""

    name: str
    ranges: tuple[tuple[date, date], ...]

    def contains(self, day: date) -> bool:
        """True when `day` lies in one of the ranges (both ends included)."""
        for first, last in self.ranges:
            if first > day:
                return False
            if day <= last:
                return True
        return False


def _parse_date(text: str, item: object) -> date:
    text = text.strip()
    if _DATE.match(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(f'"{item}" is not a date YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD')


def parse_calendar(name: str, items: Sequence[str | date]) -> Calendar:
    """A Calendar of "2026-12-25" days and "2026-12-24..2027-01-04" inclusive ranges.

    `date` items (what YAML makes of an unquoted 2026-12-25) are accepted as single days.
    Raise ValueError for a malformed date or a range that ends before it starts.
    """
    if isinstance(items, str):
        items = [items]
    ranges: list[tuple[date, date]] = []
    for item in items:
        if isinstance(item, datetime):
            raise ValueError(f'"{item}" is a date and time; a calendar holds dates YYYY-MM-DD')
        if isinstance(item, date):
            ranges.append((item, item))
            continue
        if not isinstance(item, str):
            raise ValueError(f"{item!r} is not a date YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD")
        first_text, dots, last_text = item.partition("..")
        first = _parse_date(first_text, item)
        last = _parse_date(last_text, item) if dots else first
        if last < first:
            raise ValueError(f'"{item}" ends before it starts')
        ranges.append((first, last))
    return Calendar(name, tuple(sorted(ranges)))


def _wall(at: datetime, tz: ZoneInfo) -> datetime:
    """The naive local wall time of the aware instant `at` in `tz`."""
    return at.astimezone(tz).replace(tzinfo=None)


def resolve(wall: datetime, tz: ZoneInfo) -> datetime:
    """The aware UTC instant of the naive local wall time `wall` in `tz`.

    A repeated wall time (clocks falling back) gives its first occurrence; a skipped one
    (clocks springing forward) gives the first valid instant after it, the transition itself.
    """
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if _wall(first, tz) == wall:
        return first
    # In a gap the two folds map to instants on either side of the transition; the transition
    # is the first instant whose wall time is at or after `wall`. Bisect it to the second.
    other = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    low = int(min(first, other).timestamp())
    high = int(max(first, other).timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(datetime.fromtimestamp(middle, UTC), tz) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _days_from(first: date, count: int) -> Iterator[date]:
    for offset in range(count):
        yield first + timedelta(days=offset)


def _require_aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at.isoformat()} has no time zone; pass an aware datetime")
    return at.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Window:
    """Weekdays on which a wall-clock window starts, with its start and end in minutes.

    `end <= start` crosses midnight (the occurrence belongs to the day it started); `start ==
    end` lasts a whole day; `end` may be 1440 (24:00). See the module docstring for calendars
    and daylight saving.
    """

    days: frozenset[int]
    start: int
    end: int
    except_calendar: Calendar | None = None
    only_calendar: Calendar | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.start < MINUTES_PER_DAY:
            raise ValueError(f"start {self.start} is not a minute of the day (0 to 1439)")
        if not 0 <= self.end <= MINUTES_PER_DAY:
            raise ValueError(f"end {self.end} is not a minute of the day (0 to 1440)")
        if not self.days <= frozenset(range(7)):
            raise ValueError(f"days {sorted(self.days)} are not weekdays 0 (Monday) to 6")

    def starts_on(self, day: date) -> bool:
        """True when an occurrence starts on `day` (one of its weekdays the calendars allow)."""
        return day.weekday() in self.days and self.skipped_by(day) is None

    def skipped_by(self, day: date) -> str | None:
        """Which calendar keeps an occurrence from starting on `day`: "except school-holidays",
        "only exam-weeks"; None when none does."""
        if self.only_calendar is not None and not self.only_calendar.contains(day):
            return f"only {self.only_calendar.name}"
        if self.except_calendar is not None and self.except_calendar.contains(day):
            return f"except {self.except_calendar.name}"
        return None

    def why(self, at: datetime, tz: ZoneInfo) -> str:
        """Whether the window applies at `at`, and which calendar decided when one did:
        "applies now", "not today (except school-holidays)", "not now".

        A calendar is named when it suppressed the occurrence that would hold `at`, or the one
        that would start today.
        """
        instant = _require_aware(at)
        if self.active(instant, tz):
            return "applies now"
        today = _wall(instant, tz).date()
        for day in _days_from(today - timedelta(days=2), 4):
            reason = self.skipped_by(day) if day.weekday() in self.days else None
            began, ended = self._instants(day, tz)
            if reason is not None and began <= instant < ended:
                when = "today" if day == today else f"on {day.isoformat()} (its start date)"
                return f"not {when} ({reason})"
        reason = self.skipped_by(today) if today.weekday() in self.days else None
        return "not now" if reason is None else f"not today ({reason})"

    def occurrence(self, day: date, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
        """The [start, end) UTC instants of the occurrence starting on `day`, or None.

        None when no occurrence starts that day, or when daylight saving leaves it empty.
        """
        if not self.starts_on(day):
            return None
        began, ended = self._instants(day, tz)
        return (began, ended) if began < ended else None

    def _instants(self, day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
        midnight = datetime.combine(day, time())
        # end > start: same day; end < start: next day; end == start: a whole day later.
        length = (self.end - self.start) % MINUTES_PER_DAY or MINUTES_PER_DAY
        began = resolve(midnight + timedelta(minutes=self.start), tz)
        ended = resolve(midnight + timedelta(minutes=self.start + length), tz)
        return began, ended

    def active(self, at: datetime, tz: ZoneInfo) -> bool:
        """True when the aware instant `at` lies in an occurrence, judged in `tz` wall time."""
        instant = _require_aware(at)
        today = _wall(instant, tz).date()
        # Occurrences last at most a day of wall time; two days either side covers zones whose
        # transitions move the wall clock back across midnight.
        for day in _days_from(today - timedelta(days=2), 4):
            span = self.occurrence(day, tz)
            if span is not None and span[0] <= instant < span[1]:
                return True
        return False

    def next_change(self, at: datetime, tz: ZoneInfo) -> datetime | None:
        """The first instant (aware, UTC) strictly after `at` at which `active` flips.

        None when nothing flips within HORIZON_DAYS (no days, every occurrence suppressed, or
        active all the time).
        """
        instant = _require_aware(at)
        today = _wall(instant, tz).date()
        stretch_end: datetime | None = None  # end of the active stretch holding `at`, so far
        for day in _days_from(today - timedelta(days=2), HORIZON_DAYS + 3):
            span = self.occurrence(day, tz)
            if stretch_end is not None:
                # Active at `at`: extend the stretch while occurrences touch or overlap it.
                began = span[0] if span is not None else self._instants(day, tz)[0]
                if began > stretch_end:
                    return stretch_end
                if span is not None:
                    stretch_end = max(stretch_end, span[1])
                continue
            if span is None:
                continue
            if span[0] > instant:
                return span[0]
            if instant < span[1]:
                stretch_end = span[1]
        return None


def next_change_of(windows: Iterable[Window], at: datetime, tz: ZoneInfo) -> datetime | None:
    """The earliest next change among `windows` (aware, UTC), or None when none changes."""
    changes = [change for window in windows if (change := window.next_change(at, tz)) is not None]
    return min(changes) if changes else None
