"""Time budgets: the minutes each profile used of each budget today, counted from its lookups.

A minute of a budget counts when it holds at least MIN_NAMES distinct names of the budget's
categories or at least MIN_LOOKUPS lookups of them: a game or a video played for a minute looks
up several names (assets, telemetry, the next video), while an app left in the background
re-asks one name now and then (a push or update check) and must not eat the budget. A minute
counts once, whatever the number of lookups.

The meter is memory only (no I/O): the server flushes `drain()` to its database with the log
batches and hands the stored minutes back with `load()` at start. `version` changes whenever a
budget becomes spent (or usage is loaded or topped up), and the policy then recomputes its
states, so the block starts with the next lookup.

On a PostgreSQL log many instances share, each stores its own minutes and the meter is also
told the minutes the others counted (`share`, re-read every few seconds): a budget is the sum,
so a child who moves from one site's network to another's does not start again at zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from filterdns.config.budgets import BudgetConfig

MIN_NAMES = 2  # distinct names of a budget's categories in one minute: the minute counts
MIN_LOOKUPS = 3  # or this many lookups of them in one minute
Key = tuple[str, str, str]  # (profile, budget, day as YYYY-MM-DD in the profile's zone)


def day_of(now: float, tz: ZoneInfo) -> date:
    """The date in `tz` at `now` (unix time)."""
    return datetime.fromtimestamp(now, tz).date()


def next_midnight(now: float, tz: ZoneInfo) -> float:
    """The unix time of the next midnight in `tz` (a DST change moves it, not the date)."""
    tomorrow = day_of(now, tz) + timedelta(days=1)
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=tz).timestamp()


def applies(budget: BudgetConfig, day: date) -> bool:
    """Whether the budget meters `day` (one of its days)."""
    return day.weekday() in budget.days


@dataclass
class _Minute:
    """The lookups seen in the current minute of one budget."""

    minute: int = -1
    names: set[str] = field(default_factory=set)
    lookups: int = 0
    counted: bool = False


class BudgetMeter:
    """Minutes used per (profile, budget, day), and top-ups granted."""

    def __init__(self) -> None:
        self.used: dict[Key, int] = {}
        self.others: dict[Key, int] = {}  # minutes other instances counted (a shared database)
        self.version = 0
        self._minutes: dict[tuple[str, str], _Minute] = {}
        self._dirty: set[Key] = set()

    def record(self, profile: str, budgets: Iterable[BudgetConfig], name: str, now: float,
               tz: ZoneInfo) -> None:  # fmt: skip
        """One allowed lookup of `name`, in the categories of `budgets`, at `now`."""
        minute = int(now // 60)
        day = day_of(now, tz).isoformat()
        for budget in budgets:
            seen = self._minutes.get((profile, budget.name))
            if seen is None or seen.minute != minute:
                seen = self._minutes[profile, budget.name] = _Minute(minute)
            seen.names.add(name)
            seen.lookups += 1
            if seen.counted or (len(seen.names) < MIN_NAMES and seen.lookups < MIN_LOOKUPS):
                continue
            seen.counted = True
            key = (profile, budget.name, day)
            self.used[key] = self.used.get(key, 0) + 1
            self._dirty.add(key)
            # Spent now, or maybe (a top-up grant adds minutes the meter does not know): the
            # policy recomputes the profile's state, at most once a minute per budget.
            if self.used[key] + self.others.get(key, 0) >= budget.per_day // 60:
                self.version += 1

    def minutes(self, profile: str, budget: str, day: date) -> int:
        """Minutes used of the budget on `day` (here and on the instances sharing the log)."""
        key = (profile, budget, day.isoformat())
        return self.used.get(key, 0) + self.others.get(key, 0)

    def share(self, rows: Iterable[tuple[str, str, str, int]]) -> None:
        """The minutes the other instances counted: (profile, budget, day, minutes)."""
        others = {(p, b, d): m for p, b, d, m in rows if m > 0}
        if others != self.others:
            self.others = others
            self.version += 1

    def load(self, rows: Iterable[tuple[str, str, str, int]]) -> None:
        """Usage read back from the database: (profile, budget, day, minutes)."""
        for profile, budget, day, minutes in rows:
            key = (profile, budget, day)
            self.used[key] = max(self.used.get(key, 0), minutes)
        self.version += 1

    def pending(self) -> bool:
        """Whether usage changed since the last drain."""
        return bool(self._dirty)

    def drain(self) -> list[tuple[str, str, str, int]]:
        """The usage changed since the last drain, to store."""
        rows = [(*key, self.used[key]) for key in sorted(self._dirty)]
        self._dirty.clear()
        return rows


def compare_budgets(
    old: Sequence[BudgetConfig], new: Sequence[BudgetConfig]
) -> list[tuple[str, bool]]:
    """Budget changes of a profile, as (phrase, weakens): a budget removed, larger, metering
    fewer categories or fewer days weakens protection; a new or smaller one does not."""
    before = {b.name: b for b in old}
    after = {b.name: b for b in new}
    found: list[tuple[str, bool]] = []
    for name, budget in before.items():
        if name not in after:
            found.append((f"loses budget {name} ({_describe(budget)})", True))
    for name, budget in after.items():
        was = before.get(name)
        if was is None:
            found.append((f"gains budget {name} ({_describe(budget)})", False))
        elif was != replace(budget, path=was.path, line=was.line):
            weakens = (
                budget.per_day > was.per_day
                or not set(was.categories) <= set(budget.categories)
                or not was.days <= budget.days
            )
            found.append((f"budget {name} {_describe(was)} -> {_describe(budget)}", weakens))
    return found


def _describe(budget: BudgetConfig) -> str:
    days = "" if len(budget.days) == 7 else f" on {len(budget.days)} days a week"
    return f"{budget.per_day / 60:g} min a day of {', '.join(budget.categories)}{days}"
