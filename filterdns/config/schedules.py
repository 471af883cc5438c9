"""Schedule rules (in `profiles.<name>.schedules` and `age_bands.<band>.schedules`), a profile's
`bedtime:` shorthand, and `calendars:`, the named sets of dates a rule's `only` keeps to and its
`except` skips.

A schedule rule has exactly one kind of action: `block: all` (optionally with `allow:`
domains), or category changes: `block: [..]` and/or `allow_categories: [..]`, which may be
combined in one rule but may not name the same category. ALWAYS_BLOCKED is never allowed.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from filterdns.config.fragments import (
    CLOCK_PATTERN,
    DATE_PATTERN,
    DAY_PATTERN,
    NAME_KEY_PATTERN,
    NAME_PATTERN,
    Schema,
    closed,
    extend,
    list_of,
    mapping_of,
    ref,
    string,
)
from filterdns.config.readers import ConfigReader
from filterdns.config.walker import Node, is_mapping, is_null, join, line_of, scalar_text, show
from filterdns.policy.schedule import Calendar, Window, parse_calendar, parse_clock, parse_days

SCHEDULE_KEYS = (
    "name", "days", "from", "to", "block", "allow", "allow_categories", "only", "except",
)  # fmt: skip
# `profiles.<name>.bedtime`: a `block: all` rule named bedtime; days default to daily.
BEDTIME_KEYS = ("days", "from", "to", "allow", "only", "except")
BEDTIME = "bedtime"
# Never allowed by a schedule or a band override: no child is better off without these.
ALWAYS_BLOCKED = ("malware", "phishing", "cryptojacking", "stalkerware")
_NONE: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ScheduleRule:
    """One schedule rule: a window and what it does while active.

    Exactly one kind of action: `block_all` (with `allow` domains still answered), or `block`
    categories and/or `allow_categories` (both may be given in one rule, never overlapping).
    """

    name: str
    window: Window
    block_all: bool = False
    block: tuple[str, ...] = ()  # categories blocked during the window
    allow: tuple[str, ...] = ()  # domains still allowed during `block: all` (normalized)
    allow_categories: tuple[str, ...] = ()  # categories allowed during the window
    path: str = ""  # YAML path, e.g. "profiles.minh.schedules[0]"
    line: int | None = None  # line in the file (None for built-in band rules)


class _Actions(NamedTuple):
    """What a rule does, as read; `read` is False when reading it found a problem."""

    block_all: bool
    block: tuple[str, ...]
    allow: tuple[str, ...]
    allow_categories: tuple[str, ...]
    read: bool


def read_schedules(r: ConfigReader, node: Node, path: str) -> tuple[ScheduleRule, ...] | None:
    """A list of schedule rules; `[]` (or no value) is no rules."""
    entries = r.items(node, path, "schedule rules")
    if entries is None:
        return None
    rules = [
        read_schedule(r, child, child_path, i) for i, (child, child_path) in enumerate(entries)
    ]
    return tuple(rule for rule in rules if rule is not None) if None not in rules else None


def read_schedule(r: ConfigReader, node: Node, path: str, index: int) -> ScheduleRule | None:
    """`{name, days, from, to, block: all | [categories], allow, allow_categories, only,
    except}`."""
    before = len(r.problems)
    if is_null(node):
        r.problem(node, path, "is empty; expected a schedule rule with days, from and to")
        return None
    found = r.section(node, path, SCHEDULE_KEYS)
    if not is_mapping(node):
        return None
    name = r.field(found, path, "name", r.text, f"schedule {index + 1}").strip()
    window = _window(r, node, found, path, required=("days", "from", "to"))
    actions = _actions(r, found, path)
    _check(r, node, found, path, actions)
    if len(r.problems) > before or window is None:
        return None
    return ScheduleRule(
        name, window, actions.block_all, actions.block, actions.allow, actions.allow_categories,
        path=path, line=line_of(node),
    )  # fmt: skip


def read_bedtime(r: ConfigReader, node: Node, path: str) -> tuple[ScheduleRule, ...] | None:
    """`bedtime: {days, from, to}` (or a list of them; `[]` is no bedtime): `block: all` rules
    named bedtime that replace the band's bedtime."""
    if is_mapping(node):
        rule = _bedtime(r, node, path)
        return None if rule is None else (rule,)
    entries = r.items(node, path, 'bedtime windows, e.g. {from: "21:30", to: "06:30"}')
    if entries is None:
        return None
    rules = [_bedtime(r, child, child_path) for child, child_path in entries]
    return tuple(rule for rule in rules if rule is not None) if None not in rules else None


def _bedtime(r: ConfigReader, node: Node, path: str) -> ScheduleRule | None:
    before = len(r.problems)
    if is_null(node):
        r.problem(node, path, 'is empty; expected a bedtime like {from: "21:30", to: "06:30"}')
        return None
    found = r.section(node, path, BEDTIME_KEYS)
    if not is_mapping(node):
        return None
    window = _window(r, node, found, path, required=("from", "to"))
    allow = r.field(found, path, "allow", r.domains, _NONE)
    if len(r.problems) > before or window is None:
        return None
    return ScheduleRule(BEDTIME, window, True, allow=allow, path=path, line=line_of(node))


def _window(
    r: ConfigReader, node: Node, found: Mapping[str, Node], path: str, required: Sequence[str]
) -> Window | None:
    """`days` (default daily), `from`, `to`, `only` and `except` of a rule."""
    for key, example in (("days", "[mon-fri]"), ("from", '"21:00"'), ("to", '"06:30"')):
        if key in required and key not in found:
            r.problem(node, path, f"needs {key}, e.g. {key}: {example}")
    days = r.field(found, path, "days", functools.partial(read_days, r), frozenset(range(7)))
    start = r.field(found, path, "from", functools.partial(_clock, r, end=False), None)
    end = r.field(found, path, "to", functools.partial(_clock, r, end=True), None)
    only = r.field(found, path, "only", functools.partial(_calendar, r), None)
    skip = r.field(found, path, "except", functools.partial(_calendar, r), None)
    if start is None or end is None or not days:
        return None
    return Window(days, start, end, skip, only)


def _actions(r: ConfigReader, found: Mapping[str, Node], path: str) -> _Actions:
    """`block` (all, or categories), `allow` and `allow_categories` as written."""
    before = len(r.problems)
    block_all = False
    block: tuple[str, ...] = ()
    block_node = found.get("block")
    if block_node is not None:
        entries = r.items(block_node, join(path, "block"), "categories")
        texts = [text for child, _ in entries or () if (text := scalar_text(child)) is not None]
        if texts == ["all"]:
            block_all = True
        elif entries is not None:
            block = r.field(found, path, "block", r.category_list, _NONE)
    allow = r.field(found, path, "allow", r.domains, _NONE)
    allowed = r.field(found, path, "allow_categories", r.category_list, _NONE)
    return _Actions(block_all, block, allow, allowed, len(r.problems) == before)


def _check(
    r: ConfigReader, node: Node, found: Mapping[str, Node], path: str, actions: _Actions
) -> None:
    """One kind of action per rule, and nothing that cannot take effect."""
    if not (actions.block_all or actions.block or actions.allow_categories) and actions.read:
        message = (
            "needs an action: block: all, block: [categories] or allow_categories: [categories]"
        )
        r.problem(node, path, message)
    if "allow" in found and not actions.block_all:
        message = (
            "lists domains still answered during block: all, so it needs block: all; "
            "a profile's own allow: list applies at all times"
        )
        r.problem(found["allow"], join(path, "allow"), message)
    if "allow_categories" in found:
        _check_allowed(r, found["allow_categories"], join(path, "allow_categories"), actions)


def _check_allowed(r: ConfigReader, node: Node, path: str, actions: _Actions) -> None:
    """`allow_categories` neither with `block: all`, nor overlapping `block`, nor always blocked."""
    if actions.block_all:
        message = (
            "cannot be combined with block: all, which blocks every category; "
            "use allow: for domains to keep"
        )
        r.problem(node, path, message)
    for category in actions.allow_categories:
        if category in actions.block:
            r.problem(node, path, f"{category!r} is both blocked and allowed by this rule")
        elif category in ALWAYS_BLOCKED:
            r.problem(node, path, f"{category!r} is always blocked and cannot be allowed")


def read_days(r: ConfigReader, node: Node, path: str) -> frozenset[int] | None:
    """`days: [mon-fri, sat]` as weekday numbers (schedules, bedtimes and budgets read it)."""
    entries = r.items(node, path, "days")
    if entries is None:
        return None
    days: set[int] = set()
    good = True
    for child, child_path in entries:
        found = r.one(child, child_path, "a day like mon or a range like mon-fri", _day)
        if found is None:
            good = False
        else:
            days |= found
    if good and not days:
        r.problem(node, path, "needs at least one day, e.g. [mon-fri] or daily")
        return None
    return frozenset(days) if good else None


def _day(text: str) -> frozenset[int]:
    return parse_days([text])


def _clock(r: ConfigReader, node: Node, path: str, *, end: bool) -> int | None:
    return r.one(node, path, 'a time "HH:MM"', functools.partial(parse_clock, end=end))


def _calendar(r: ConfigReader, node: Node, path: str) -> Calendar | None:
    """A calendar defined under `calendars:`, by name."""
    text = r.text(node, path, "a calendar name")
    if text is None:
        return None
    for calendar in r.known_calendars:
        if calendar.name == text.strip():
            return calendar
    if text.strip() in r.calendar_names:
        return None  # defined, but with problems of its own
    if r.known_calendars:
        names = ", ".join(c.name for c in r.known_calendars)
        message = f"{show(text)} is not a calendar; calendars: {names}"
    else:
        message = f"{show(text)} is not a calendar; none are defined under calendars:"
    r.problem(node, path, message)
    return None


def read_calendars(r: ConfigReader, node: Node | None, path: str) -> tuple[Calendar, ...] | None:
    """`{school-holidays: ["2026-12-24..2027-01-04", "2027-02-16"]}` in file order."""
    found: list[Calendar] = []
    good = True
    expected = 'a mapping of calendar names to dates, e.g. {holidays: ["2026-12-24"]}'
    for name, key_node, value in r.pairs(node, path, expected):
        key_path = join(path, name)
        good = r.name_key(name, key_node, key_path, "calendar") and good
        ranges = r.parsed(value, key_path, "dates", _date_range, None)
        if ranges is None:
            good = False
        elif good:
            found.append(Calendar(name, tuple(sorted(ranges))))
    return tuple(found) if good else None


def _date_range(text: str) -> tuple[date, date]:
    """One calendar entry, "2026-12-25" or "2026-12-24..2027-01-04", as (first, last)."""
    return parse_calendar("", [text]).ranges[0]


def calendars_schema() -> Schema:
    """The schema of `calendars:`."""
    return mapping_of(
        'Named sets of dates: "YYYY-MM-DD" days and "YYYY-MM-DD..YYYY-MM-DD" ranges',
        list_of(string("A date or a range of dates", DATE_PATTERN)),
        {"pattern": NAME_KEY_PATTERN},
        default={},
    )


def schedule_definitions() -> dict[str, Schema]:
    """The shared `$defs/schedule` and `$defs/schedules` of profiles and age bands."""
    properties: dict[str, Schema] = {
        "name": string('A label for reports and explain (default "schedule 1", ...)'),
        "days": list_of(
            string("A day or a range of days", DAY_PATTERN),
            "Days the rule starts on: mon..sun, ranges like mon-fri or fri-mon, daily, "
            "weekdays, weekends",
        ),
        "from": string('Start time "HH:MM" (quoted)', CLOCK_PATTERN, examples=["21:00"]),
        "to": string(
            'End time "HH:MM" (quoted); at or before `from` it crosses midnight; "24:00" is '
            "midnight",
            CLOCK_PATTERN,
            examples=["06:30"],
        ),
        "block": {
            "description": "all: block everything (except `allow`), or categories blocked "
            "while the rule is active",
            "anyOf": [{"const": "all"}, ref("categories")],
        },
        "allow": list_of(ref("domain"), "Domains still answered during block: all"),
        "allow_categories": extend(
            ref("categories"),
            description="Categories allowed while active even though the band blocks them "
            "(never malware, phishing, cryptojacking or stalkerware)",
        ),
        "only": string(
            "A calendar name: occurrences start only on its dates (with except: on its dates "
            "that are not in except)",
            NAME_PATTERN,
        ),
        "except": string("A calendar name: no occurrence starts on its dates", NAME_PATTERN),
    }
    schedule = closed(
        "A schedule rule: active on `days` from `from` to `to`, with one kind of action: "
        "block: all (with allow), or block: [categories] and/or allow_categories",
        properties,
        SCHEDULE_KEYS,
    )
    schedule["required"] = ["days", "from", "to"]
    bedtime = closed(
        "A bedtime: everything blocked on `days` (default daily) from `from` to `to`",
        {key: properties[key] for key in BEDTIME_KEYS},
        BEDTIME_KEYS,
    )
    bedtime["required"] = ["from", "to"]
    return {
        "schedule": schedule,
        "schedules": list_of(ref("schedule"), "Schedule rules"),
        "bedtime": bedtime,
    }
