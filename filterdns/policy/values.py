"""What the policy hands out: decisions, their actions, and grants."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Protocol

from filterdns.config import ScheduleRule
from filterdns.config.budgets import BudgetConfig

# (listed name, category, source, allow) for one list holding a name or a parent of it
Match = tuple[str, str, str, bool]


class Trace(Protocol):
    """Where the decision's steps write what they found, for `explain`: a list, or `NO_TRACE`.

    A protocol, not `list[str]`: compiled (filterdns.compiled), an append to a value typed as a
    list is the list's own append, whatever a subclass defines, so a list that keeps nothing
    kept every line of every decision.
    """

    def append(self, line: str, /) -> None: ...


class _Discard:
    """A trace that keeps nothing: deciding for a query costs no string formatting."""

    __slots__ = ()

    def append(self, line: str, /) -> None:
        return None


NO_TRACE: Trace = _Discard()


class Action(StrEnum):
    """What a decision does with a query; equal to its text ("allow", ...), as the log and
    `explain --json` write it."""

    ALLOW = "allow"
    BLOCK = "block"  # answered with the blocking.response mode
    REWRITE = "rewrite"  # SafeSearch: a CNAME to the safe host
    NXDOMAIN = "nxdomain"  # bypass names (canary, Private Relay), whatever the mode
    NODATA = "nodata"  # DDR, and rebinding protection


BLOCKING_ACTIONS = frozenset({Action.BLOCK, Action.NXDOMAIN, Action.NODATA})


class GrantKind(StrEnum):
    """What a grant does; stored as its text in the `grants` table's `kind` column."""

    ALLOW_DOMAIN = "allow-domain"  # step 3: a domain (and its subdomains) allowed
    ALLOW_CATEGORY = "allow-category"  # step 6: a category no longer blocked
    PAUSE = "pause"  # step 5: everything blocked (`filterdns pause`), maybe until resumed
    BLOCK_ALL = "block-all"  # step 5: everything blocked for a while (`override --block-all`)
    BUDGET = "budget"  # step 5b: `minutes` more of the budget named `category`, until midnight


BLOCKING_KINDS = frozenset({GrantKind.PAUSE, GrantKind.BLOCK_ALL})
UNTIL_RESUMED = 253402300799.0  # 9999-12-31 23:59:59 UTC: the end of a pause with no duration
# How the rule of a step-5 decision made by a pause or a block-all override starts (the report
# counts the logged lookups by it).
PAUSE_RULES = ("paused ", "everything blocked ")


@dataclass(frozen=True, slots=True)
class Grant:
    """A timed exception for one profile: a domain or a category allowed, or everything
    blocked (a pause, a `block-all` override), until `expires_at`."""

    id: int
    profile: str
    expires_at: float  # unix time; UNTIL_RESUMED for a pause without a duration
    domain: str | None = None
    category: str | None = None
    reason: str = ""
    kind: GrantKind = GrantKind.ALLOW_DOMAIN
    created_by: str = ""  # who made it (the invoking user), "" for grants of older versions
    minutes: int = 0  # a budget top-up's minutes

    def describe(self) -> str:
        """ "grant #3 (youtube.com until 2026-11-30 10:45 UTC)", "pause #4 (until resumed)"."""
        until = self.until(UTC, "%Y-%m-%d %H:%M UTC")
        if self.kind in BLOCKING_KINDS:
            noun = "pause" if self.kind is GrantKind.PAUSE else "block-all override"
            return f"{noun} #{self.id} ({until})"
        if self.kind is GrantKind.BUDGET:
            return f"top-up #{self.id} (+{self.minutes} min of budget {self.category} {until})"
        what = self.domain or f"category {self.category}"
        return f"grant #{self.id} ({what} {until})"

    def to_json(self) -> dict[str, object]:
        """Its fields for --json (`minutes` only on a budget top-up, as before budgets)."""
        return {k: v for k, v in asdict(self).items() if k != "minutes" or self.minutes}

    def until(self, zone: tzinfo, fmt: str = "%H:%M") -> str:
        """ "until 10:45" in `zone`, or "until resumed"."""
        if self.expires_at >= UNTIL_RESUMED:
            return "until resumed"
        return "until " + datetime.fromtimestamp(self.expires_at, zone).strftime(fmt)

    def blocking_rule(self, zone: tzinfo) -> str:
        """The rule of a step-5 decision: "paused by anna until 10:45 (exam)"."""
        verb = PAUSE_RULES[0] if self.kind is GrantKind.PAUSE else PAUSE_RULES[1]
        who = f"by {self.created_by} " if self.created_by else ""
        note = f" ({self.reason})" if self.reason else ""
        return f"{verb}{who}{self.until(zone)}{note}, #{self.id}"


def grant_kind(kind: str | None, domain: str | None) -> GrantKind:
    """The kind of a stored row; rows of older versions have none and allow a domain or a
    category."""
    if kind:
        return GrantKind(kind)
    return GrantKind.ALLOW_DOMAIN if domain is not None else GrantKind.ALLOW_CATEGORY


@dataclass(slots=True, init=False)  # per query: not frozen (6x cheaper); __init__ below
class Decision:
    """What the policy decided for one query, and why."""

    action: Action
    profile: str
    step: int  # the step of the decision order that decided
    reason: str  # a sentence a parent can read
    category: str | None
    rule: str | None  # "schedule bedtime (profiles.minh.schedules[0], line 31)", ...
    source: str | None  # the list that holds the name
    listed: str | None  # the listed name that matched (the name itself or a parent)
    target: str | None  # the safe host of a rewrite
    ttl_cap: int | None  # seconds until this profile's decision may next change
    trace: tuple[str, ...]  # every step considered (filled when explaining)
    budgets: tuple[BudgetConfig, ...]  # the budgets an allowed lookup counts toward

    def __init__(  # noqa: PLR0917 - the fields' order, as the dataclass's would take them
        self,
        action: Action,
        profile: str,
        step: int,
        reason: str,
        category: str | None = None,
        rule: str | None = None,
        source: str | None = None,
        listed: str | None = None,
        target: str | None = None,
        ttl_cap: int | None = None,
        trace: tuple[str, ...] = (),
        budgets: tuple[BudgetConfig, ...] = (),
    ) -> None:
        self.action = action
        self.profile = profile
        self.step = step
        self.reason = reason
        self.category = category
        self.rule = rule
        self.source = source
        self.listed = listed
        self.target = target
        self.ttl_cap = ttl_cap
        self.trace = trace
        self.budgets = budgets


def rule_label(rule: ScheduleRule) -> str:
    """ "schedule bedtime (profiles.minh.schedules[0], line 31)"."""
    where = rule.path + (f", line {rule.line}" if rule.line is not None else "")
    return f"schedule {rule.name}" + (f" ({where})" if where else "")
