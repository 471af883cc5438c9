"""The parental policy: for one profile, one name and one instant, allow, block or rewrite.

The decision order (README "Decision order"; `filterdns explain` prints it step by step):

1. (the ACL, before the policy)          2. (client -> profile, before the policy)
3. Always-allowed names: the profile's `allow` list, active domain grants (and allow
   overrides), and a `block: all` schedule's own `allow` list while it is active.
4. Bypass protection (every band but `adult`, unless `blocking.bypass_protection: false`): the
   Firefox canary and iCloud Private Relay names answer NXDOMAIN, DDR answers NODATA, and the
   `bypass` category is blocked.
5. A pause, a block-all override or an active `block: all` schedule blocks everything else
   (the category the name is also listed in is kept on the decision, for reports and alerts).
5b. A time budget spent today blocks its categories until midnight in the profile's zone (a
   category blocked anyway stays blocked by step 6); an allowed name of a running budget's
   categories is counted (policy/budgets.py) and its answer lives at most BUDGET_TTL seconds.
6. Blocked categories: the band's, plus the profile's, plus those of active `block: [...]`
   schedules, minus those of active `allow_categories` schedules and category grants; then the
   profile's own `block` list. An `@@` exception in a category's lists allows that name for that
   category only.
7. SafeSearch and YouTube restrictions rewrite the search engines to their safe hosts.
8. Everything else is allowed (cache, then upstream).

How overlapping rules combine: explicit allows (step 3) beat everything after them; `block: all`
beats category allowances (step 5 before 6); category allowances beat category blocks of bands,
profiles and schedules alike; the bypass category is blocked even when a schedule allows it.

Every decision carries `ttl_cap`: the seconds until this profile's decision could next change (a
schedule window starting or ending, a grant or a pause expiring), so answers never outlive the
rule that made them and bedtime starts on the minute even for clients that cache.

Each profile's schedule state (which rules are active, the category set, when it next changes)
is computed once and reused until that change (policy/state.py), so a query costs a few set
lookups and one index walk. The steps are functions of their own (policy/steps.py); what they
hand out is in policy/values.py, the names they know by heart in policy/special.py.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence

from filterdns.config import BlockingConfig, Config
from filterdns.config.budgets import BudgetConfig
from filterdns.lists.index import DomainIndex
from filterdns.lists.namemodel import NameModel, registrable
from filterdns.memo import Memo
from filterdns.policy import steps
from filterdns.policy.budgets import BudgetMeter
from filterdns.policy.localzone import LocalZone
from filterdns.policy.state import (
    FRESH_DECISION_COST,
    MAX_STATE_SECONDS,
    Profile,
    State,
    cap,
    compute_state,
    min_cap,
    regexes_of,
    rules_at,
)
from filterdns.policy.timezones import zone_of
from filterdns.policy.values import (
    BLOCKING_ACTIONS,
    NO_TRACE,
    Action,
    Decision,
    Grant,
    Match,
    Trace,
)

BUDGET_TTL = 60  # seconds an allowed answer of a budgeted category may be cached
RULE_MEMO = 1024  # rule texts shared by remembered decisions (a memo: cleared whole when full)
_RULES: Memo[str, str] = Memo(RULE_MEMO)


class Policy:
    """Decides for any profile; built from the configuration, reads the current list index."""

    def __init__(
        self,
        config: Config,
        index: Callable[[], DomainIndex],
        grants: Callable[[], Sequence[Grant]] = tuple,
        model: NameModel | None = None,
        meter: BudgetMeter | None = None,
    ) -> None:
        self.blocking: BlockingConfig = config.blocking
        # The names of `local_records:` and their ready answers (the local records link's too).
        self.local = LocalZone(config.local_records)
        self._index = index
        # Asked only about names no list decides (blocking.name_model turns it off).
        self._model = model if config.blocking.name_model else None
        self._grants = grants
        self._grants_seen: Sequence[Grant] | None = None
        # Minutes used of the time budgets: fed by `count`, stored and loaded by the server,
        # kept across reloads (the server hands the same meter to each new policy).
        self.meter = meter if meter is not None else BudgetMeter()
        self._meter_seen = self.meter.version
        self.profiles: dict[str, Profile] = {}
        for profile in config.profiles:
            band = config.band(profile.age_band)
            self.profiles[profile.name] = Profile(
                config=profile,
                band=band.name,
                categories=frozenset(band.categories) | frozenset(profile.categories),
                rules=config.schedules_of(profile),
                tz=zone_of(profile.timezone, config.server.timezone),
                safesearch=band.safesearch if profile.safesearch is None else profile.safesearch,
                youtube=band.youtube if profile.youtube is None else profile.youtube,
                bypass_protection=config.blocking.bypass_protection and band.name != "adult",
                allow_regexes=regexes_of(profile.allow),
                block_regexes=regexes_of(profile.block),
            )

    # The decision

    def decide(
        self, profile_name: str, name: str, now: float | None = None, *, explain: bool = False
    ) -> Decision:
        """The decision for `name` (normalised) asked by `profile_name` at `now` (unix time)."""
        now = time.time() if now is None else now
        if explain:
            profile = self.profiles[profile_name]
            state = self._state(profile, now)
            trace = rules_at(profile, now)
            decision = self._decide(profile, state, name, trace)
            ttl_cap = min_cap(decision.ttl_cap, cap(state, now))
            return dataclasses.replace(decision, ttl_cap=ttl_cap, trace=tuple(trace))
        decision, ttl_cap = self.verdict(profile_name, name, now)
        if ttl_cap == decision.ttl_cap:
            return decision
        return dataclasses.replace(decision, ttl_cap=ttl_cap)

    def verdict(self, profile_name: str, name: str, now: float) -> tuple[Decision, int | None]:
        """The hot path of `decide`: the remembered decision (shared: never change it) and the
        seconds until it may change, which its `ttl_cap` does not hold when a schedule is near.
        """
        profile = self.profiles[profile_name]
        state = self._current(profile, now)
        decision = state.decisions.get(name) or self._remember(profile, state, name)
        if state.change_at == math.inf:
            return decision, decision.ttl_cap
        return decision, min_cap(decision.ttl_cap, cap(state, now))

    def current_state(self, profile_name: str, now: float) -> State:
        """The profile's state at `now`: a new object whenever what its decisions depend on
        changed (grants, pauses, budgets, the schedule), its `index` the list index in force.
        The answer memo compares them to know whether a kept answer still holds."""
        return self._current(self.profiles[profile_name], now)

    def first_blocked(
        self, profile_name: str, names: Sequence[str], now: float
    ) -> tuple[int, Decision] | None:
        """(position, decision) of the first of `names` blocked for the profile, else None.

        The names an answer leads to, judged at once: one look at the profile's state for all.
        """
        profile = self.profiles[profile_name]
        state = self._current(profile, now)
        decisions = state.decisions
        for position, name in enumerate(names):
            decision = decisions.get(name) or self._remember(profile, state, name)
            if decision.action in BLOCKING_ACTIONS:
                return position, decision
        return None

    def count(self, decision: Decision, name: str, now: float) -> None:
        """An allowed lookup answered: counted toward the budgets its decision names."""
        if decision.budgets:
            tz = self.profiles[decision.profile].tz
            self.meter.record(decision.profile, decision.budgets, name, now, tz)

    def _current(self, profile: Profile, now: float) -> State:
        """The profile's state at `now`, its remembered decisions dropped if the lists changed."""
        state = self._state(profile, now)
        index = self._index()
        if state.index is not index:  # the lists were reloaded
            state.decisions.clear()
            state.index = index
        return state

    def _remember(self, profile: Profile, state: State, name: str) -> Decision:
        """Decide and remember, the remembered decision holding no text twice: its `listed` is
        the name itself (the memo's key) when equal, its `rule` one string per rule (a blocked
        decision is a few hundred bytes; the memo holds tens of thousands)."""
        decision = self._decide(profile, state, name, NO_TRACE)
        if decision.listed == name:
            decision.listed = name
        rule = decision.rule
        if rule is not None:
            decision.rule = _RULES.get(rule) or _RULES.remember(rule, rule)
        cost = 1 if decision is profile.allowed else FRESH_DECISION_COST
        return state.decisions.remember(name, decision, cost)

    def _decide(self, profile: Profile, state: State, name: str, trace: Trace) -> Decision:
        """Steps 3 to 8 in order: the first that decides wins."""
        decision = steps.local_record(self.local, profile, name, trace) or steps.allowed(
            profile, state, name, trace
        )
        if decision is not None:
            return decision
        matches = self._matches(name)
        metering: list[tuple[str, BudgetConfig]] = []
        decision = (
            steps.bypass(profile, name, matches, trace)
            or steps.block_all(profile, state, matches, trace)
            or steps.budget(profile, state, matches, trace, metering)
            or steps.categories(profile, state, name, matches, trace)
            or steps.rewrite(profile, name, trace)
        )
        if decision is not None:
            if metering and decision.action is Action.REWRITE:  # the safe host spends it too
                decision = _metered_rewrite(decision, metering)
            return decision
        trace.append(
            "8. allowed: answered from the cache or the upstreams; the names the answer leads "
            "to (CNAME cloaking) and private addresses (rebinding) are judged too "
            "(explain --resolve asks the upstreams and shows it)"
        )
        if metering:
            return _metered(profile, metering)
        if profile.allowed is None:
            profile.allowed = Decision(Action.ALLOW, profile.config.name, 8, "allowed")
        return profile.allowed

    def _matches(self, name: str) -> list[Match]:
        """(listed name, category, source, allow) for every list holding the name or a parent,
        then for every regex rule of a list found in it (listed: `/pattern/`, source:
        "list:line"); when none, the name model's verdict on its site, if any.

        Called only for names whose decision is not remembered, so the regex rules (at most
        `regexes.MAX_PER_LIST` per list) cost nothing for a repeated name."""
        index = self._index()
        lists = index.lists
        found: list[Match] = [
            (m.name, lists[m.list_id].category, lists[m.list_id].source, lists[m.list_id].allow)
            for m in index.match(name)
        ]
        for rule in index.match_regex(name):
            info = lists[rule.list_id]
            where = f"{info.source}:{rule.line}"
            found.append((f"/{rule.pattern}/", info.category, where, info.allow))
        if found or self._model is None:
            return found
        scored = self._model.score(name)
        if scored is None:
            return found
        category, probability = scored
        site = registrable(name) or name
        return [(site, category, f"name model (score {probability:.2f})", False)]

    # Schedule state

    def _state(self, profile: Profile, now: float) -> State:
        grants = self._grants()
        # A grant made or revoked, a budget spent or topped up: recompute everyone.
        if grants is not self._grants_seen or self.meter.version != self._meter_seen:
            self._grants_seen = grants
            self._meter_seen = self.meter.version
            for other in self.profiles.values():
                other.state = None
        state = profile.state
        if state is None or now >= state.until or now < state.until - MAX_STATE_SECONDS:
            state = profile.state = compute_state(profile, now, grants, self.meter)
        return state

    # Explaining

    def state_of(self, profile_name: str, now: float) -> State:
        """The schedule state of a profile at `now` (for `explain`)."""
        return compute_state(self.profiles[profile_name], now, self._grants(), self.meter)


def _metered(profile: Profile, metering: list[tuple[str, BudgetConfig]]) -> Decision:
    """Step 8 for a name a running budget counts: allowed, its answer kept short so the next
    lookup is counted too and the block starts on time."""
    budgets = [b for _c, b in metering]
    names = ", ".join(b.name for b in budgets)
    category = metering[0][0]
    reason = f"allowed; counts toward the budget {names} of {profile.config.name}"
    return Decision(
        Action.ALLOW, profile.config.name, 8, reason, category=category,
        rule=budgets[0].label(), ttl_cap=BUDGET_TTL, budgets=tuple(budgets),
    )  # fmt: skip


def _metered_rewrite(decision: Decision, metering: list[tuple[str, BudgetConfig]]) -> Decision:
    """A SafeSearch rewrite of a name a running budget counts (YouTube in restricted mode under
    a video budget): counted like an allowed lookup, its answer kept as short."""
    decision.budgets = tuple(b for _c, b in metering)
    decision.ttl_cap = BUDGET_TTL
    return decision
