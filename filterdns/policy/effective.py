"""The protection one profile has in effect, and what changes between two of them.

`protection(config, name)` takes a profile together with its age band (categories, schedules,
SafeSearch, YouTube, bypass protection) as the policy applies them; `compare(old, new)` says in
short phrases what a device would gain or lose going from one to the other, each flagged when
it weakens protection. `protection.difference` builds on these for whole configurations.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from filterdns.config import YOUTUBE_LEVELS, Config, ScheduleRule, YouTube
from filterdns.config.budgets import BudgetConfig
from filterdns.policy.budgets import compare_budgets
from filterdns.policy.schedule import DAYS, MINUTES_PER_DAY, Window, format_clock


@dataclass(frozen=True, slots=True)
class Protection:
    """What one profile blocks in effect: its band and its own settings taken together."""

    name: str
    band: str
    categories: tuple[str, ...]
    rules: tuple[ScheduleRule, ...]
    safesearch: bool
    youtube: YouTube
    bypass: bool
    allow: tuple[str, ...]
    block: tuple[str, ...]
    timezone: str | None
    budgets: tuple[BudgetConfig, ...] = ()


def protection(config: Config, name: str) -> Protection:
    """The protection of profile `name` in `config`; KeyError when there is no such profile."""
    profile = config.profile(name)
    band = config.band(profile.age_band)
    return Protection(
        name=name,
        band=band.name,
        categories=tuple(dict.fromkeys((*band.categories, *profile.categories))),
        rules=config.schedules_of(profile),
        safesearch=band.safesearch if profile.safesearch is None else profile.safesearch,
        youtube=band.youtube if profile.youtube is None else profile.youtube,
        bypass=band.name != "adult",  # as the policy decides; the global switch is compared apart
        allow=profile.allow,
        block=profile.block,
        timezone=profile.timezone or config.server.timezone,
        budgets=profile.budgets,
    )


def compare(old: Protection, new: Protection) -> list[tuple[str, bool]]:
    """What changes from `old` to `new`, as (phrase, weakens) pairs."""
    found: list[tuple[str, bool]] = []
    if old.band != new.band:
        found.append((f"age band {old.band} -> {new.band}", False))
    lost = [c for c in old.categories if c not in new.categories]
    gained = [c for c in new.categories if c not in old.categories]
    if lost:
        found.append((f"loses categories {', '.join(lost)}", True))
    if gained:
        found.append((f"gains categories {', '.join(gained)}", False))
    found += _rules(old, new)
    if old.safesearch != new.safesearch:
        found.append(("loses SafeSearch", True) if old.safesearch else ("gains SafeSearch", False))
    if old.youtube != new.youtube:
        weaker = YOUTUBE_LEVELS.index(new.youtube) > YOUTUBE_LEVELS.index(old.youtube)
        found.append((f"YouTube restriction {old.youtube} -> {new.youtube}", weaker))
    if old.bypass != new.bypass:
        pair = (
            ("loses bypass protection", True) if old.bypass else ("gains bypass protection", False)
        )
        found.append(pair)
    found += _domains(old.allow, new.allow, "always allows", grows_weaker=True)
    found += _domains(old.block, new.block, "blocks", grows_weaker=False)
    found += compare_budgets(old.budgets, new.budgets)
    if old.timezone != new.timezone and (old.rules or new.rules):
        where = new.timezone or "the system's time zone"
        found.append((f"schedules read in {where} (was {old.timezone or 'the system zone'})", True))
    return found


def _domains(
    old: Sequence[str], new: Sequence[str], what: str, *, grows_weaker: bool
) -> list[tuple[str, bool]]:
    added = [d for d in new if d not in old]
    removed = [d for d in old if d not in new]
    found = []
    if added:
        found.append((f"now {what} {', '.join(added)}", grows_weaker))
    if removed:
        found.append((f"no longer {what} {', '.join(removed)}", not grows_weaker))
    return found


def _rules(old: Protection, new: Protection) -> list[tuple[str, bool]]:
    """Schedule rules by name: lost, gained or changed.

    A rule is compared by what it does, not where it is written (paths and lines move with every
    edit). A rule lost or changed weakens protection when some minute of the week it blocked
    something is no longer blocked as much by the new rules (or by a category now blocked at
    all times); a rule gained or changed weakens when it allows a category at a minute the old
    rules did not. So an earlier bedtime is no weakening, a later one is.
    """
    old_by, new_by = _by_name(old.rules), _by_name(new.rules)
    old_all = [key for keys in old_by.values() for key in keys]
    new_all = [key for keys in new_by.values() for key in keys]
    found: list[tuple[str, bool]] = []
    for name in dict.fromkeys((*old_by, *new_by)):
        before, after = old_by.get(name, ()), new_by.get(name, ())
        if set(before) == set(after):
            continue
        gone = [key for key in before if key not in after]
        came = [key for key in after if key not in before]
        weakens = any(not _blocks_covered(key, new_all, new.categories) for key in gone) or any(
            not _allows_covered(key, old_all) for key in came
        )
        if not after:
            found.append((f"loses schedule {name} ({_describe(before)})", weakens))
        elif not before:
            allows = ", which allows categories" if weakens else ""
            found.append((f"gains schedule {name} ({_describe(after)}){allows}", weakens))
        else:
            text = f"schedule {name} changed ({_describe(before)} -> {_describe(after)})"
            found.append((text, weakens))
    return found


RuleKey = tuple[Window, bool, tuple[str, ...], tuple[str, ...], tuple[str, ...]]
WEEK = 7 * MINUTES_PER_DAY


def _by_name(rules: Iterable[ScheduleRule]) -> dict[str, tuple[RuleKey, ...]]:
    grouped: dict[str, list[RuleKey]] = {}
    for rule in rules:
        key = (rule.window, rule.block_all, rule.block, rule.allow, rule.allow_categories)
        grouped.setdefault(rule.name, []).append(key)
    return {name: tuple(keys) for name, keys in grouped.items()}


def _blocks_covered(rule: RuleKey, by: Sequence[RuleKey], always: Sequence[str]) -> bool:
    """True when every minute `rule` blocks something, `by` (or `always`) blocks it too.

    `block: all` is covered only by `block: all` keeping no more domains open; a category by
    the same category or by a `block: all` that keeps no domain open.
    """
    window, block_all, block, allow, _ = rule
    need = _minutes(window)
    if block_all:
        keys = [k for k in by if k[1] and set(k[3]) <= set(allow)]
        return need <= _union(window, keys)
    for category in block:
        if category not in always:
            keys = [k for k in by if (k[1] and not k[3]) or category in k[2]]
            if not need <= _union(window, keys):
                return False
    return True


def _allows_covered(rule: RuleKey, by: Sequence[RuleKey]) -> bool:
    """True when every minute `rule` allows a category, `by` allowed it already."""
    window, *_, allowed = rule
    need = _minutes(window)
    return all(need <= _union(window, [k for k in by if category in k[4]]) for category in allowed)


def _union(window: Window, keys: Iterable[RuleKey]) -> set[int]:
    """The minutes of the week the windows of `keys` cover on every day `window` is active.

    A window skipped on a calendar's dates (`except`) covers a window skipped on the same dates
    (or one never skipped only when it is never skipped itself); a window kept to a calendar's
    dates (`only`) covers only a window kept to the same calendar. Other calendars are not
    compared date by date, which can only call a change weakening that is not.
    """
    covered: set[int] = set()
    for key in keys:
        skip, only = key[0].except_calendar, key[0].only_calendar
        if skip in (None, window.except_calendar) and only in (None, window.only_calendar):
            covered |= _minutes(key[0])
    return covered


def _minutes(window: Window) -> set[int]:
    """The minutes of the week (0 = Monday 00:00) the window is active, in wall-clock time."""
    length = (window.end - window.start) % MINUTES_PER_DAY or MINUTES_PER_DAY
    minutes: set[int] = set()
    for day in window.days:
        begin = day * MINUTES_PER_DAY + window.start
        minutes.update((begin + step) % WEEK for step in range(length))
    return minutes


def _describe(keys: Sequence[RuleKey]) -> str:
    """ "sun-thu 21:00-06:30: block all / fri-sat 22:00-07:00: block all"."""
    parts = []
    for window, block_all, block, allow, allowed in keys:
        when = f"{days_text(window.days)} {format_clock(window.start)}-{format_clock(window.end)}"
        if window.only_calendar is not None:
            when += f" only {window.only_calendar.name}"
        if window.except_calendar is not None:
            when += f" except {window.except_calendar.name}"
        does = []
        if block_all:
            does.append("block all" + (f" but {', '.join(allow)}" if allow else ""))
        if block:
            does.append(f"block {', '.join(block)}")
        if allowed:
            does.append(f"allow {', '.join(allowed)}")
        parts.append(f"{when}: {', '.join(does)}")
    return " / ".join(parts)


def days_text(days: frozenset[int]) -> str:
    """Weekday numbers as ranges: {6, 0, 1, 2, 3} -> "sun-thu", all seven -> "daily"."""
    if len(days) == 7:
        return "daily"
    if not days:
        return "no day"
    # Start at a day whose eve is not in the set, so a run across the week end stays whole.
    start = next(d for d in range(7) if d in days and (d - 1) % 7 not in days)
    runs: list[list[int]] = []
    for step in range(7):
        day = (start + step) % 7
        if day not in days:
            continue
        if runs and (runs[-1][-1] + 1) % 7 == day:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(DAYS[r[0]] + (f"-{DAYS[r[-1]]}" if len(r) > 1 else "") for r in runs)
