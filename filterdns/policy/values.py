"""What the policy hands out: decisions, their actions, and grants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from filterdns.config import ScheduleRule

# (listed name, category, source, allow) for one list holding a name or a parent of it
Match = tuple[str, str, str, bool]


class Action(StrEnum):
    """What a decision does with a query; equal to its text ("allow", ...), as the log and
    `explain --json` write it."""

    ALLOW = "allow"
    BLOCK = "block"  # answered with the blocking.response mode
    REWRITE = "rewrite"  # SafeSearch: a CNAME to the safe host
    NXDOMAIN = "nxdomain"  # bypass names (canary, Private Relay), whatever the mode
    NODATA = "nodata"  # DDR, and rebinding protection


BLOCKING_ACTIONS = frozenset({Action.BLOCK, Action.NXDOMAIN, Action.NODATA})


@dataclass(frozen=True, slots=True)
class Grant:
    """A timed exception for one profile: a domain or a category allowed until `expires_at`."""

    id: int
    profile: str
    expires_at: float  # unix time
    domain: str | None = None
    category: str | None = None
    reason: str = ""

    def describe(self) -> str:
        what = self.domain or f"category {self.category}"
        until = datetime.fromtimestamp(self.expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"grant #{self.id} ({what} until {until})"


@dataclass(slots=True)  # built per query: not frozen (6x cheaper), never mutated
class Decision:
    """What the policy decided for one query, and why."""

    action: Action
    profile: str
    step: int  # the step of the decision order that decided
    reason: str  # a sentence a parent can read
    category: str | None = None
    rule: str | None = None  # "schedule bedtime (profiles.minh.schedules[0], line 31)", ...
    source: str | None = None  # the list that holds the name
    listed: str | None = None  # the listed name that matched (the name itself or a parent)
    target: str | None = None  # the safe host of a rewrite
    ttl_cap: int | None = None  # seconds until this profile's decision may next change
    trace: tuple[str, ...] = ()  # every step considered (filled when explaining)


def rule_label(rule: ScheduleRule) -> str:
    """ "schedule bedtime (profiles.minh.schedules[0], line 31)"."""
    where = rule.path + (f", line {rule.line}" if rule.line is not None else "")
    return f"schedule {rule.name}" + (f" ({where})" if where else "")
