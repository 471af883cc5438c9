"""Each profile's state now, for a parent's home screen and `filterdns status`.

The state is one of STATES, judged in this order from the policy's schedule state of the profile
(the same `Policy.state_of` that `explain` and the server use):

- "paused": a pause or a block-all override grant is in force (`label`: "paused by anna until
  10:45 (exam)");
- "bedtime": an active `block: all` schedule rule named bedtime;
- "blocked": another active `block: all` rule (school hours, an exam period; `label`: its name);
- "restricted": an active rule blocks categories the profile does not block all day (`label`:
  the rule's name), or a time budget is used up today ("budget games used up");
- "allowed": none of these.

`until` is the instant the state or its label next changes (None: nothing scheduled, e.g. a
pause until resumed), found by stepping the policy's state from change to change.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from filterdns.actions.budgets import BudgetRow, budgets
from filterdns.actions.common import zone
from filterdns.actions.grants import active
from filterdns.config import Config
from filterdns.config.schedules import BEDTIME
from filterdns.lists.index import DomainIndex
from filterdns.policy.budgets import BudgetMeter
from filterdns.policy.decisions import Policy
from filterdns.policy.state import Profile, State
from filterdns.policy.values import Grant
from filterdns.querylog.store import read_usage

STATES = ("allowed", "bedtime", "restricted", "blocked", "paused")
MAX_STEPS = 64  # changes looked at ahead for `until` (a week of a few rules a day)


@dataclass(frozen=True, slots=True)
class ProfileStatus:
    """A profile's state now: what a parent sees first."""

    profile: str
    display_name: str
    state: str  # one of STATES
    label: str | None  # the rule or grant responsible (None when allowed)
    until: float | None  # unix time of the next change of state or label; None: none scheduled
    paused_until: float | None  # the end of the pause in force (UNTIL_RESUMED: until resumed)
    budgets: tuple[BudgetRow, ...]  # the profile's time budgets today
    grants: tuple[Grant, ...]  # its grants, pauses and overrides in force

    def to_json(self) -> dict[str, object]:
        """Its fields for `status --json` and the web API."""
        return {
            "profile": self.profile, "display_name": self.display_name, "state": self.state,
            "label": self.label, "until": self.until, "paused_until": self.paused_until,
            "budgets": [b.to_json() for b in self.budgets],
            "grants": [g.to_json() for g in self.grants],
        }  # fmt: skip


def status(config: Config, policy: Policy, *, now: float | None = None) -> list[ProfileStatus]:
    """Every profile's state at `now`, in the configuration's order. FilterDnsError when the
    database cannot be read."""
    now = time.time() if now is None else now
    grants = active(config, now=now)
    rows = budgets(config, now=now, grants=grants)
    found = []
    for profile in config.profiles:
        name = profile.name
        seen = policy.profiles[name]
        state = policy.state_of(name, now)
        what = classify(seen, state, config)
        found.append(ProfileStatus(
            profile=name,
            display_name=config.display_name(name),
            state=what[0],
            label=what[1],
            until=_next_change(policy, config, name, state, what),
            paused_until=state.paused[0].expires_at if state.paused else None,
            budgets=tuple(r for r in rows if r.profile == name),
            grants=tuple(g for g in grants if g.profile == name),
        ))  # fmt: skip
    return found


def classify(profile: Profile, state: State, config: Config) -> tuple[str, str | None]:
    """(one of STATES, the label of the rule or grant responsible) of a schedule state."""
    if state.paused:  # the one ending last first
        text = state.paused[0].blocking_rule(zone(config, profile.config.name))
        return "paused", text.rsplit(", #", 1)[0]
    if state.block_all:  # the profile's own rules first
        first = state.block_all[0]
        return ("bedtime" if first.name == BEDTIME else "blocked"), first.name
    extra = state.blocked - profile.categories
    for rule in state.active:
        if extra.intersection(rule.block):
            return "restricted", rule.name
    spent = sorted({budget.name for budget, _used in state.spent.values()})
    if spent:
        return "restricted", f"budget {', '.join(spent)} used up"
    return "allowed", None


def policy_for(config: Config, *, now: float | None = None) -> Policy:
    """A policy for `status` outside the server: the grants in force and the budget minutes
    stored in the database, no list index (a state needs none)."""
    now = time.time() if now is None else now
    grants = tuple(active(config, now=now))
    meter = BudgetMeter()
    meter.load(read_usage(config.log.database, now))
    empty = DomainIndex.empty()
    return Policy(config, lambda: empty, lambda: grants, None, meter)


def _next_change(
    policy: Policy, config: Config, name: str, state: State, what: tuple[str, str | None]
) -> float | None:
    """The first instant the state or its label changes, stepping from change to change."""
    at = state.change_at
    for _ in range(MAX_STEPS):
        if at == math.inf:
            return None
        later = policy.state_of(name, at)
        if classify(policy.profiles[name], later, config) != what:
            return at
        if later.change_at <= at:
            return None
        at = later.change_at
    return None
