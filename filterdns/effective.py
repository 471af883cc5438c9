"""The protection one profile has in effect, and what changes between two of them.

`protection(config, name)` takes a profile together with its age band (categories, schedules,
SafeSearch, YouTube, bypass protection) as the policy applies them; `compare(old, new)` says in
short phrases what a device would gain or lose going from one to the other, each flagged when
it weakens protection. `protection.difference` builds on these for whole configurations.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from filterdns.config import YOUTUBE_LEVELS, Config, ScheduleRule
from filterdns.schedule import DAYS, Window, format_clock


@dataclass(frozen=True, slots=True)
class Protection:
    """What one profile blocks in effect: its band and its own settings taken together."""

    name: str
    band: str
    categories: tuple[str, ...]
    rules: tuple[ScheduleRule, ...]
    safesearch: bool
    youtube: str
    bypass: bool
    allow: tuple[str, ...]
    block: tuple[str, ...]
    timezone: str | None


def protection(config: Config, name: str) -> Protection:
    """The protection of profile `name` in `config`; KeyError when there is no such profile."""
    profile = config.profile(name)
    band = config.band(profile.age_band)
    return Protection(
        name=name,
        band=band.name,
        categories=tuple(dict.fromkeys((*band.categories, *profile.categories))),
        rules=band.schedules + profile.schedules,
        safesearch=band.safesearch if profile.safesearch is None else profile.safesearch,
        youtube=band.youtube if profile.youtube is None else profile.youtube,
        bypass=band.name != "adult",  # as the policy decides; the global switch is compared apart
        allow=profile.allow,
        block=profile.block,
        timezone=profile.timezone or config.server.timezone,
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
    found += _rules(old.rules, new.rules)
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


def _rules(old: Sequence[ScheduleRule], new: Sequence[ScheduleRule]) -> list[tuple[str, bool]]:
    """Schedule rules by name: lost, gained or changed.

    A rule is compared by what it does, not where it is written (paths and lines move with every
    edit). Losing or changing a rule that blocks weakens; so does gaining one that allows.
    """
    old_by, new_by = _by_name(old), _by_name(new)
    found: list[tuple[str, bool]] = []
    for name in dict.fromkeys((*old_by, *new_by)):
        before, after = old_by.get(name, ()), new_by.get(name, ())
        if set(before) == set(after):
            continue
        gone = [key for key in before if key not in after]
        came = [key for key in after if key not in before]
        weakens = any(_blocks(key) for key in gone) or any(key[4] for key in came)
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


def _by_name(rules: Iterable[ScheduleRule]) -> dict[str, tuple[RuleKey, ...]]:
    grouped: dict[str, list[RuleKey]] = {}
    for rule in rules:
        key = (rule.window, rule.block_all, rule.block, rule.allow, rule.allow_categories)
        grouped.setdefault(rule.name, []).append(key)
    return {name: tuple(keys) for name, keys in grouped.items()}


def _blocks(key: RuleKey) -> bool:
    return key[1] or bool(key[2])


def _describe(keys: Sequence[RuleKey]) -> str:
    """ "sun-thu 21:00-06:30: block all / fri-sat 22:00-07:00: block all"."""
    parts = []
    for window, block_all, block, allow, allowed in keys:
        when = f"{days_text(window.days)} {format_clock(window.start)}-{format_clock(window.end)}"
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
