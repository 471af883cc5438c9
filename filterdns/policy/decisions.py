"""The parental policy: for one profile, one name and one instant, allow, block or rewrite.

The decision order (README "Decision order"; `filterdns explain` prints it step by step):

1. (the ACL, before the policy)          2. (client -> profile, before the policy)
3. Always-allowed names: the profile's `allow` list, active grants, and a `block: all` schedule's
   own `allow` list while it is active.
4. Bypass protection (every band but `adult`, unless `blocking.bypass_protection: false`): the
   Firefox canary and iCloud Private Relay names answer NXDOMAIN, DDR answers NODATA, and the
   `bypass` category is blocked.
5. An active `block: all` schedule blocks everything else (the category the name is also
   listed in is kept on the decision, for reports and alerts).
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
schedule window starting or ending, a grant expiring), so answers never outlive the rule that
made them and bedtime starts on the minute even for clients that cache.

Each profile's schedule state (which rules are active, the category set, when it next changes)
is computed once and reused until that change, so a query costs a few set lookups and one index
walk.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from filterdns.config import BlockingConfig, Config, ProfileConfig, ScheduleRule, YouTube
from filterdns.dns.names import is_subdomain
from filterdns.lists.index import DomainIndex
from filterdns.memo import Memo
from filterdns.policy.timezones import zone_of

CANARY_NAMES = ("use-application-dns.net",)  # Firefox: NXDOMAIN turns DNS over HTTPS off
RELAY_NAMES = ("mask.icloud.com", "mask-h2.icloud.com")  # iCloud Private Relay: NXDOMAIN
DDR_NAMES = ("_dns.resolver.arpa",)  # RFC 9462 discovery of encrypted DNS: NODATA
BYPASS_CATEGORY = "bypass"

SAFESEARCH_HOSTS = {
    "google": "forcesafesearch.google.com",
    "bing": "strict.bing.com",
    "duckduckgo": "safe.duckduckgo.com",
}
YOUTUBE_HOSTS = {
    YouTube.STRICT: "restrict.youtube.com",
    YouTube.MODERATE: "restrictmoderate.youtube.com",
}
# Every Google search domain: google.<cc>, google.co.<cc>, google.com.<cc> and google.com.
_GOOGLE = re.compile(r"(?:www\.)?google\.(?:com|[a-z]{2}|co\.[a-z]{2}|com\.[a-z]{2})")
_BING = frozenset({"bing.com", "www.bing.com"})
_DUCKDUCKGO = frozenset({"duckduckgo.com", "www.duckduckgo.com", "start.duckduckgo.com"})
_YOUTUBE = frozenset(
    {
        "youtube.com",
        "www.youtube.com",
        "m.youtube.com",
        "youtubei.googleapis.com",
        "youtube.googleapis.com",
        "www.youtube-nocookie.com",
    }
)


class Action(StrEnum):
    """What a decision does with a query; equal to its text ("allow", ...), as the log and
    `explain --json` write it."""

    ALLOW = "allow"
    BLOCK = "block"  # answered with the blocking.response mode
    REWRITE = "rewrite"  # SafeSearch: a CNAME to the safe host
    NXDOMAIN = "nxdomain"  # bypass names (canary, Private Relay), whatever the mode
    NODATA = "nodata"  # DDR, and rebinding protection


BLOCKING_ACTIONS = frozenset({Action.BLOCK, Action.NXDOMAIN, Action.NODATA})
MAX_STATE_SECONDS = 3600.0  # recompute a profile's state at least hourly (e.g. after a DST rule)
MAX_REMEMBERED = 65536  # decisions remembered per profile and state


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


@dataclass
class _State:
    """A profile's schedule-dependent state, valid until `until` (unix time)."""

    until: float  # recompute at this time
    change_at: float  # the next schedule or grant change (inf: none)
    blocked: frozenset[str]
    block_all: tuple[ScheduleRule, ...]
    active: tuple[ScheduleRule, ...]
    granted_domains: tuple[Grant, ...]
    granted_categories: dict[str, Grant]
    schedule_allow: tuple[tuple[str, ScheduleRule], ...]
    # Decisions made in this state, by name: valid until the state or the list index changes.
    decisions: Memo[str, Decision] = field(default_factory=lambda: Memo(MAX_REMEMBERED))
    index: DomainIndex | None = None


@dataclass
class _Profile:
    """A profile with its band applied: what every query of this profile needs."""

    config: ProfileConfig
    band: str
    categories: frozenset[str]
    rules: tuple[ScheduleRule, ...]
    tz: ZoneInfo
    safesearch: bool
    youtube: YouTube
    bypass_protection: bool
    state: _State | None = None
    trace_rules: list[str] = field(default_factory=list)
    # The decision for every name nothing else applies to, shared (never changed): most names.
    allowed: Decision | None = None


def rule_label(rule: ScheduleRule) -> str:
    """ "schedule bedtime (profiles.minh.schedules[0], line 31)"."""
    where = rule.path + (f", line {rule.line}" if rule.line is not None else "")
    return f"schedule {rule.name}" + (f" ({where})" if where else "")


class Policy:
    """Decides for any profile; built from the configuration, reads the current list index."""

    def __init__(
        self,
        config: Config,
        index: Callable[[], DomainIndex],
        grants: Callable[[], Sequence[Grant]] = tuple,
    ) -> None:
        self.blocking: BlockingConfig = config.blocking
        self._index = index
        self._grants = grants
        self._grants_seen: Sequence[Grant] | None = None
        self.profiles: dict[str, _Profile] = {}
        for profile in config.profiles:
            band = config.band(profile.age_band)
            self.profiles[profile.name] = _Profile(
                config=profile,
                band=band.name,
                categories=frozenset(band.categories) | frozenset(profile.categories),
                rules=config.schedules_of(profile),
                tz=zone_of(profile.timezone, config.server.timezone),
                safesearch=band.safesearch if profile.safesearch is None else profile.safesearch,
                youtube=band.youtube if profile.youtube is None else profile.youtube,
                bypass_protection=config.blocking.bypass_protection and band.name != "adult",
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
            trace: list[str] = []
            decision = self._decide(profile, state, name, trace)
            cap = _min_cap(decision.ttl_cap, _cap(state, now))
            return dataclasses.replace(decision, ttl_cap=cap, trace=tuple(trace))
        decision, cap = self.verdict(profile_name, name, now)
        if cap == decision.ttl_cap:
            return decision
        return dataclasses.replace(decision, ttl_cap=cap)

    def verdict(self, profile_name: str, name: str, now: float) -> tuple[Decision, int | None]:
        """The hot path of `decide`: the remembered decision (shared: never change it) and the
        seconds until it may change, which its `ttl_cap` does not hold when a schedule is near.
        """
        profile = self.profiles[profile_name]
        state = self._current(profile, now)
        decision = state.decisions.get(name) or self._remember(profile, state, name)
        if state.change_at == math.inf:
            return decision, decision.ttl_cap
        return decision, _min_cap(decision.ttl_cap, _cap(state, now))

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

    def _current(self, profile: _Profile, now: float) -> _State:
        """The profile's state at `now`, its remembered decisions dropped if the lists changed."""
        state = self._state(profile, now)
        index = self._index()
        if state.index is not index:  # the lists were reloaded
            state.decisions.clear()
            state.index = index
        return state

    def _remember(self, profile: _Profile, state: _State, name: str) -> Decision:
        return state.decisions.remember(name, self._decide(profile, state, name, _NO_TRACE))

    def _decide(self, profile: _Profile, state: _State, name: str, trace: list[str]) -> Decision:
        p = profile.config.name
        # 3. Always allowed.
        for domain in profile.config.allow:
            if is_subdomain(name, domain):
                trace.append(f"3. allowed: {domain} is on the allow list of profile {p}")
                return Decision(
                    Action.ALLOW, p, 3, f"{domain} is allowed for {p}", rule="profile allow"
                )
        for grant in state.granted_domains:
            if grant.domain is not None and is_subdomain(name, grant.domain):
                trace.append(f"3. allowed by {grant.describe()}")
                return Decision(
                    Action.ALLOW,
                    p,
                    3,
                    f"allowed for {p} by {grant.describe()}",
                    rule=grant.describe(),
                )
        for domain, rule in state.schedule_allow:
            if is_subdomain(name, domain):
                trace.append(f"3. allowed: {domain} is on the allow list of {rule_label(rule)}")
                return Decision(
                    Action.ALLOW,
                    p,
                    3,
                    f"{domain} stays allowed during {rule.name}",
                    rule=rule_label(rule),
                )
        trace.append(f"3. no allow list, grant or schedule allowance of {p} covers {name}")
        matches = self._matches(name)
        # 4. Bypass protection.
        if profile.bypass_protection:
            bypass = self._bypass(p, name, matches, trace)
            if bypass is not None:
                return bypass
        else:
            trace.append(f"4. bypass protection is off for {p} (band {profile.band})")
        # 5. Block everything.
        if state.block_all:
            rule = state.block_all[0]
            reason = f"{rule.name}: everything is blocked for {p}"
            trace.append(f"5. blocked: {rule_label(rule)} blocks everything now")
            # The category the name is also in is kept, so a night-time attempt counts as adult
            # (or gambling...) in reports and alerts too.
            found = _listed_category(matches, state.blocked)
            if found is None:
                return Decision(Action.BLOCK, p, 5, reason, rule=rule_label(rule))
            listed, category, source = found
            trace.append(f"5. {listed} is also in {category} ({source})")
            return Decision(
                Action.BLOCK,
                p,
                5,
                f"{reason}; {listed} is also listed in {source}",
                category=category,
                rule=rule_label(rule),
                source=source,
                listed=listed,
            )
        trace.append("5. no `block: all` schedule is active")
        # 6. Categories and the profile's own block list.
        for listed, category, source, allow in matches:
            if allow or category not in state.blocked:
                continue
            if any(c == category for _n, c, _s, a in matches if a):  # an @@ exception
                trace.append(f"6. {listed} is excepted from {category} by an allow entry")
                continue
            trace.append(f"6. blocked: {listed} is in {category} ({source})")
            return Decision(
                Action.BLOCK,
                p,
                6,
                f"{category} is blocked for {p}; {listed} is listed in {source}",
                category=category,
                rule=self._category_rule(profile, state, category),
                source=source,
                listed=listed,
            )
        for domain in profile.config.block:
            if is_subdomain(name, domain):
                trace.append(f"6. blocked: {domain} is on the block list of profile {p}")
                return Decision(
                    Action.BLOCK,
                    p,
                    6,
                    f"{domain} is blocked for {p}",
                    rule="profile block",
                    listed=domain,
                )
        in_categories = sorted({c for _n, c, _s, a in matches if not a})
        trace.append(
            "6. not in a blocked category"
            + (f" (listed in {', '.join(in_categories)}, not blocked now)" if in_categories else "")
        )
        # 7. SafeSearch and YouTube.
        target = self._safe_host(profile, name)
        if target is not None:
            trace.append(f"7. rewritten: {name} -> {target}")
            return Decision(Action.REWRITE, p, 7, f"SafeSearch for {p}: {target}", target=target)
        trace.append("7. no SafeSearch rewrite applies")
        trace.append(
            "8. allowed: answered from the cache or the upstreams; the names the answer leads "
            "to (CNAME cloaking) and private addresses (rebinding) are judged too "
            "(explain --resolve asks the upstreams and shows it)"
        )
        if profile.allowed is None:
            profile.allowed = Decision(Action.ALLOW, p, 8, "allowed")
        return profile.allowed

    def _bypass(
        self,
        p: str,
        name: str,
        matches: list[tuple[str, str, str, bool]],
        trace: list[str],
    ) -> Decision | None:
        if name in CANARY_NAMES or name in RELAY_NAMES:
            what = "DNS over HTTPS canary" if name in CANARY_NAMES else "iCloud Private Relay"
            trace.append(f"4. bypass protection: {what} answered NXDOMAIN")
            return Decision(
                Action.NXDOMAIN, p, 4, f"bypass protection: {what}", category=BYPASS_CATEGORY,
                rule="bypass protection",
            )  # fmt: skip
        if name in DDR_NAMES:
            trace.append("4. bypass protection: encrypted DNS discovery (DDR) answered NODATA")
            return Decision(
                Action.NODATA, p, 4, "bypass protection: encrypted DNS discovery (DDR)",
                category=BYPASS_CATEGORY, rule="bypass protection",
            )  # fmt: skip
        for listed, category, source, allow in matches:
            if category == BYPASS_CATEGORY and not allow:
                trace.append(f"4. blocked: {listed} is in bypass ({source})")
                return Decision(
                    Action.BLOCK,
                    p,
                    4,
                    f"bypass protection: {listed} (VPN, proxy or DNS over HTTPS) is listed in "
                    f"{source}",
                    category=BYPASS_CATEGORY,
                    rule="bypass protection",
                    source=source,
                    listed=listed,
                )
        trace.append("4. not a bypass name")
        return None

    def _matches(self, name: str) -> list[tuple[str, str, str, bool]]:
        """(listed name, category, source, allow) for every list holding the name or a parent."""
        index = self._index()
        lists = index.lists
        return [
            (m.name, lists[m.list_id].category, lists[m.list_id].source, lists[m.list_id].allow)
            for m in index.match(name)
        ]

    @staticmethod
    def _category_rule(profile: _Profile, state: _State, category: str) -> str:
        for rule in state.active:
            if category in rule.block:
                return rule_label(rule)
        if category in profile.config.categories:
            return f"profile {profile.config.name} categories"
        return f"age band {profile.band}"

    @staticmethod
    def _safe_host(profile: _Profile, name: str) -> str | None:
        if profile.safesearch:
            if _GOOGLE.fullmatch(name):
                return SAFESEARCH_HOSTS["google"]
            if name in _BING:
                return SAFESEARCH_HOSTS["bing"]
            if name in _DUCKDUCKGO:
                return SAFESEARCH_HOSTS["duckduckgo"]
        if profile.youtube in YOUTUBE_HOSTS and name in _YOUTUBE:
            return YOUTUBE_HOSTS[profile.youtube]
        return None

    # Schedule state

    def _state(self, profile: _Profile, now: float) -> _State:
        grants = self._grants()
        if grants is not self._grants_seen:  # a grant was made or revoked: recompute everyone
            self._grants_seen = grants
            for other in self.profiles.values():
                other.state = None
        state = profile.state
        if state is None or now >= state.until or now < state.until - MAX_STATE_SECONDS:
            state = profile.state = self._compute(profile, now, grants)
        return state

    def _compute(self, profile: _Profile, now: float, grants: Sequence[Grant]) -> _State:
        at = datetime.fromtimestamp(now, UTC)
        active = tuple(rule for rule in profile.rules if rule.window.active(at, profile.tz))
        changes = [
            change.timestamp()
            for rule in profile.rules
            if (change := rule.window.next_change(at, profile.tz)) is not None
        ]
        mine = [g for g in grants if g.profile == profile.config.name and g.expires_at > now]
        changes.extend(g.expires_at for g in mine)
        change_at = min(changes, default=math.inf)
        blocked = set(profile.categories)
        for rule in active:
            blocked.update(rule.block)
        granted_categories = {g.category: g for g in mine if g.category is not None}
        for rule in active:
            blocked.difference_update(rule.allow_categories)
        blocked.difference_update(granted_categories)
        block_all = tuple(rule for rule in active if rule.block_all)
        return _State(
            until=min(change_at, now + MAX_STATE_SECONDS),
            change_at=change_at,
            blocked=frozenset(blocked),
            block_all=block_all,
            active=active,
            granted_domains=tuple(g for g in mine if g.domain is not None),
            granted_categories=granted_categories,
            schedule_allow=tuple((domain, rule) for rule in block_all for domain in rule.allow),
        )

    # Explaining

    def state_of(self, profile_name: str, now: float) -> _State:
        """The schedule state of a profile at `now` (for `explain`)."""
        profile = self.profiles[profile_name]
        return self._compute(profile, now, self._grants())


class _Discard(list[str]):
    """A trace that keeps nothing: deciding for a query costs no string formatting."""

    def append(self, _item: str) -> None:
        return None


_NO_TRACE = _Discard()


def _listed_category(
    matches: list[tuple[str, str, str, bool]], blocked: frozenset[str]
) -> tuple[str, str, str] | None:
    """(listed name, category, source) of the first list holding the name, preferring the
    categories the profile blocks anyway; None when no list holds it."""
    listed = [(n, c, s) for n, c, s, allow in matches if not allow]
    for found in listed:
        if found[1] in blocked:
            return found
    return listed[0] if listed else None


def _cap(state: _State, now: float) -> int | None:
    """Whole seconds (at least 1) until the state's next change, None when none is coming."""
    return max(1, math.ceil(state.change_at - now)) if state.change_at != math.inf else None


def _min_cap(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)
