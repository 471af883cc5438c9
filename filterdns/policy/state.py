"""A profile as the policy sees it, and its schedule-dependent state.

Each profile's state (which rules are active, the category set, the grants in force, when it
next changes) is computed once and reused until that change; the decisions made in it are
remembered per name in the state, so a query costs a dict lookup.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from filterdns.config import ProfileConfig, ScheduleRule, YouTube
from filterdns.config.budgets import BudgetConfig
from filterdns.lists.index import DomainIndex
from filterdns.memo import CostMemo
from filterdns.policy.budgets import BudgetMeter, applies, day_of, next_midnight
from filterdns.policy.values import BLOCKING_KINDS, Decision, Grant, GrantKind, rule_label
from filterdns.regexes import compile_rule, is_regex

Search = Callable[[str], re.Match[str] | None]

MAX_STATE_SECONDS = 3600.0  # recompute a profile's state at least hourly (e.g. after a DST rule)
# Decisions remembered per profile and state, in units: a name decided by the decision every
# ordinary name shares costs 1 (its key and slot, ~120 bytes); one with a decision of its own
# (blocked, with its reason text, ~400 bytes) costs FRESH_DECISION_COST. So a memo of allowed names
# holds as many as before, and one of blocked names half as many (15 MB at most, not 30).
MAX_REMEMBERED = 65536
FRESH_DECISION_COST = 2
BAND_PATH = "age_bands."  # where the band rules are written (or built in)


@dataclass
class State:
    """A profile's schedule-dependent state, valid until `until` (unix time)."""

    until: float  # recompute at this time
    change_at: float  # the next schedule or grant change (inf: none)
    blocked: frozenset[str]
    block_all: tuple[ScheduleRule, ...]
    active: tuple[ScheduleRule, ...]
    granted_domains: tuple[Grant, ...]
    granted_categories: dict[str, Grant]
    schedule_allow: tuple[tuple[str, ScheduleRule], ...]
    # Active pauses and block-all overrides, the one ending last first: step 5 blocks everything.
    paused: tuple[Grant, ...] = ()
    # Step 5b: the categories of budgets spent today, with the budget and its minutes used...
    spent: dict[str, tuple[BudgetConfig, int]] = field(default_factory=dict)
    # ... and those of budgets still running: the budgets an allowed lookup of each counts for.
    metered: dict[str, tuple[BudgetConfig, ...]] = field(default_factory=dict)
    # Decisions made in this state, by name: valid until the state or the list index changes.
    decisions: CostMemo[str, Decision] = field(default_factory=lambda: CostMemo(MAX_REMEMBERED))
    index: DomainIndex | None = None


@dataclass
class Profile:
    """A profile with its band applied: what every query of this profile needs."""

    config: ProfileConfig
    band: str
    categories: frozenset[str]
    rules: tuple[ScheduleRule, ...]
    tz: ZoneInfo
    safesearch: bool
    youtube: YouTube
    bypass_protection: bool
    state: State | None = None
    trace_rules: list[str] = field(default_factory=list)
    # The decision for every name nothing else applies to, shared (never changed): most names.
    allowed: Decision | None = None
    # The `/regex/` entries of the profile's allow and block lists: (entry, its search).
    allow_regexes: tuple[tuple[str, Search], ...] = ()
    block_regexes: tuple[tuple[str, Search], ...] = ()


def regexes_of(entries: Sequence[str]) -> tuple[tuple[str, Search], ...]:
    """The `/regex/` entries of a block or allow list, compiled (the configuration checked them)."""
    return tuple((e, compile_rule(e[1:-1]).search) for e in entries if is_regex(e))


def compute_state(
    profile: Profile, now: float, grants: Sequence[Grant], meter: BudgetMeter | None = None
) -> State:
    """A profile's state at `now`: active rules, blocked categories, grants, budgets, next
    change."""
    at = datetime.fromtimestamp(now, UTC)
    # The profile's own rules first: a block is credited to the rule its parent wrote when a
    # band rule is active at the same time.
    active = tuple(
        sorted(
            (rule for rule in profile.rules if rule.window.active(at, profile.tz)),
            key=lambda rule: rule.path.startswith(BAND_PATH),
        )
    )
    changes = [
        change.timestamp()
        for rule in profile.rules
        if (change := rule.window.next_change(at, profile.tz)) is not None
    ]
    mine = [g for g in grants if g.profile == profile.config.name and g.expires_at > now]
    changes.extend(g.expires_at for g in mine)  # TTLs end with a grant or a pause
    paused = tuple(sorted((g for g in mine if g.kind in BLOCKING_KINDS),
                          key=lambda g: (-g.expires_at, g.id)))  # fmt: skip
    mine = [g for g in mine if g.kind not in BLOCKING_KINDS]
    if profile.config.budgets:
        changes.append(next_midnight(now, profile.tz))  # a new day: budgets start again
    change_at = min(changes, default=math.inf)
    blocked = set(profile.categories)
    for rule in active:
        blocked.update(rule.block)
    top_ups = [g for g in mine if g.kind is GrantKind.BUDGET]
    mine = [g for g in mine if g.kind is not GrantKind.BUDGET]
    granted_categories = {g.category: g for g in mine if g.category is not None}
    for rule in active:
        blocked.difference_update(rule.allow_categories)
    blocked.difference_update(granted_categories)
    block_all = tuple(rule for rule in active if rule.block_all)
    spent, metered = _budgets(profile, now, meter or BudgetMeter(), set(granted_categories),
                              top_ups)  # fmt: skip
    return State(
        until=min(change_at, now + MAX_STATE_SECONDS),
        change_at=change_at,
        blocked=frozenset(blocked),
        block_all=block_all,
        active=active,
        granted_domains=tuple(g for g in mine if g.domain is not None),
        granted_categories=granted_categories,
        schedule_allow=tuple((domain, rule) for rule in block_all for domain in rule.allow),
        paused=paused,
        spent=spent,
        metered=metered,
    )


def _budgets(
    profile: Profile, now: float, meter: BudgetMeter, granted: set[str], top_ups: list[Grant]
) -> tuple[dict[str, tuple[BudgetConfig, int]], dict[str, tuple[BudgetConfig, ...]]]:
    """(spent, metered) of the profile's budgets today; a category grant lifts a spent budget's
    block on that category, a top-up grant adds its minutes today."""
    day = day_of(now, profile.tz)
    spent: dict[str, tuple[BudgetConfig, int]] = {}
    metered: dict[str, tuple[BudgetConfig, ...]] = {}
    for budget in profile.config.budgets:
        if not applies(budget, day):
            continue
        used = meter.minutes(profile.config.name, budget.name, day)
        limit = int(budget.per_day // 60)
        limit += sum(g.minutes for g in top_ups if g.category == budget.name)
        for category in budget.categories:
            if used >= limit and category not in granted:
                spent.setdefault(category, (budget, used))
            else:
                metered[category] = (*metered.get(category, ()), budget)
    for category in spent:
        metered.pop(category, None)
    return spent, metered


def rules_at(profile: Profile, now: float) -> list[str]:
    """For `explain`: each rule of the profile, whether it applies at `now` and which calendar
    decided, e.g. "2. schedule school (profiles.minh.schedules[0], line 9): not today (except
    school-holidays)"."""
    at = datetime.fromtimestamp(now, UTC)
    if not profile.rules:
        return [f"2. profile {profile.config.name} has no schedule rules"]
    return [f"2. {rule_label(rule)}: {rule.window.why(at, profile.tz)}" for rule in profile.rules]


def cap(state: State, now: float) -> int | None:
    """Whole seconds (at least 1) until the state's next change, None when none is coming."""
    return max(1, math.ceil(state.change_at - now)) if state.change_at != math.inf else None


def min_cap(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)
