"""The steps of the decision order, one function each (see `policy.decisions`).

Each takes the profile, its state, the name (and the lists holding it) and a trace that
`explain` fills (a discarding one otherwise), and returns the decision of its step, or None to
go on to the next.
"""

from __future__ import annotations

from filterdns.config import MODEL_CATEGORIES, NEVER_BLOCK_CATEGORY
from filterdns.config.budgets import BudgetConfig
from filterdns.dns.names import is_subdomain
from filterdns.policy.localzone import LocalZone
from filterdns.policy.special import (
    BYPASS_CATEGORY,
    CANARY_NAMES,
    DDR_NAMES,
    RELAY_NAMES,
    safe_host,
)
from filterdns.policy.state import Profile, State
from filterdns.policy.values import Action, Decision, Match, Trace, rule_label


def local_record(zone: LocalZone, profile: Profile, name: str, trace: Trace) -> Decision | None:
    """3. A name of `local_records:` (or the reverse name of a local address): answered as given,
    for every profile, upstreams never asked."""
    if name not in zone.names:
        return None
    what = zone.describe(name)
    trace.append(f"3. local record: {name} is answered {what} ({zone.where(name)})")
    reason = f"{name} is a local record ({what})"
    return Decision(Action.ALLOW, profile.config.name, 3, reason, rule="local record")


def allowed(profile: Profile, state: State, name: str, trace: Trace) -> Decision | None:
    """3. The profile's allow list, a domain grant, a `block: all` rule's own allow list."""
    p = profile.config.name
    for domain in profile.config.allow:
        if is_subdomain(name, domain):
            trace.append(f"3. allowed: {domain} is on the allow list of profile {p}")
            return Decision(
                Action.ALLOW, p, 3, f"{domain} is allowed for {p}", rule="profile allow"
            )
    for entry, search in profile.allow_regexes:
        if search(name):
            trace.append(f"3. allowed: {name} matches {entry} on the allow list of profile {p}")
            reason = f"{name} matches {entry}, allowed for {p}"
            return Decision(Action.ALLOW, p, 3, reason, rule="profile allow")
    for grant in state.granted_domains:
        if grant.domain is not None and is_subdomain(name, grant.domain):
            trace.append(f"3. allowed by {grant.describe()}")
            reason = f"allowed for {p} by {grant.describe()}"
            return Decision(Action.ALLOW, p, 3, reason, rule=grant.describe())
    for domain, rule in state.schedule_allow:
        if is_subdomain(name, domain):
            trace.append(f"3. allowed: {domain} is on the allow list of {rule_label(rule)}")
            reason = f"{domain} stays allowed during {rule.name}"
            return Decision(Action.ALLOW, p, 3, reason, rule=rule_label(rule))
    trace.append(f"3. no allow list, grant or schedule allowance of {p} covers {name}")
    return None


def bypass(profile: Profile, name: str, matches: list[Match], trace: Trace) -> Decision | None:
    """4. Bypass protection: the canaries, DDR and the `bypass` category (every band but adult)."""
    p = profile.config.name
    if not profile.bypass_protection:
        trace.append(f"4. bypass protection is off for {p} (band {profile.band})")
        return None
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
        if category != BYPASS_CATEGORY or allow:
            continue
        if (why := excepted(matches, category)) is not None:
            trace.append(f"4. {listed} is in bypass ({source}) but {why}")
        else:
            trace.append(f"4. blocked: {listed} is in bypass ({source})")
            return Decision(
                Action.BLOCK,
                p,
                4,
                f"bypass protection: {listed} (VPN, proxy or DNS over HTTPS) is listed in {source}",
                category=BYPASS_CATEGORY,
                rule="bypass protection",
                source=source,
                listed=listed,
            )
    trace.append("4. not a bypass name")
    return None


def block_all(
    profile: Profile, state: State, matches: list[Match], trace: Trace
) -> Decision | None:
    """5. A pause, a block-all override or an active `block: all` rule blocks everything
    (keeping the category the name also matches)."""
    p = profile.config.name
    if state.paused:
        pause = state.paused[0]
        rule = pause.blocking_rule(profile.tz)
        reason = f"{rule}: everything is blocked for {p}"
        trace.append(f"5. blocked: {rule}")
    elif state.block_all:
        schedule = state.block_all[0]
        rule = rule_label(schedule)
        reason = f"{schedule.name}: everything is blocked for {p}"
        trace.append(f"5. blocked: {rule} blocks everything now")
    else:
        trace.append("5. no pause, block-all override or `block: all` schedule is active")
        return None
    # The category the name is also in is kept, so a night-time attempt counts as adult (or
    # gambling...) in reports and alerts too.
    found = _listed_category(matches, state.blocked)
    if found is None:
        return Decision(Action.BLOCK, p, 5, reason, rule=rule)
    listed, category, source = found
    trace.append(f"5. {listed} is also in {category} ({source})")
    return Decision(
        Action.BLOCK, p, 5, f"{reason}; {held(listed, category, source, 'also ')}",
        category=category, rule=rule, source=source, listed=listed,
    )  # fmt: skip


def budget(
    profile: Profile,
    state: State,
    matches: list[Match],
    trace: Trace,
    metering: list[tuple[str, BudgetConfig]],
) -> Decision | None:
    """5b. A budget spent today blocks its categories (those not blocked anyway); the budgets
    still running that the name counts toward are added to `metering` with the category."""
    p = profile.config.name
    for listed, category, source, allow in matches:
        if allow or category in state.blocked:
            continue
        if category not in state.spent and category not in state.metered:
            continue
        if (why := excepted(matches, category)) is not None:
            trace.append(f"5b. {listed} is in {category} ({source}) but {why}")
            continue
        if category in state.spent:
            spent, used = state.spent[category]
            rule = f"{spent.label()}: {used} min used today"
            trace.append(f"5b. blocked: {listed} is in {category} ({source}); {rule}")
            reason = f"the {spent.name} budget of {p} is spent for today; " + held(
                listed, category, source
            )
            return Decision(
                Action.BLOCK, p, 5, reason, category=category, rule=rule, source=source,
                listed=listed,
            )  # fmt: skip
        for running in state.metered[category]:
            if all(running is not b for _c, b in metering):
                metering.append((category, running))
                trace.append(f"5b. {listed} is in {category}: counts toward {running.label()}")
    if not metering and profile.config.budgets:
        trace.append("5b. no budget of the profile meters or blocks this name")
    return None


def categories(
    profile: Profile, state: State, name: str, matches: list[Match], trace: Trace
) -> Decision | None:
    """6. A blocked category holding the name (unless an @@ exception), the profile's block list."""
    p = profile.config.name
    for listed, category, source, allow in matches:
        if allow or category not in state.blocked:
            continue
        if (why := excepted(matches, category)) is not None:
            trace.append(f"6. {listed} is in {category} ({source}) but {why}")
            continue
        trace.append(f"6. blocked: {listed} is in {category} ({source})")
        return Decision(
            Action.BLOCK, p, 6, f"{category} is blocked for {p}; {held(listed, category, source)}",
            category=category, rule=_category_rule(profile, state, category), source=source,
            listed=listed,
        )  # fmt: skip
    for domain in profile.config.block:
        if is_subdomain(name, domain):
            trace.append(f"6. blocked: {domain} is on the block list of profile {p}")
            reason = f"{domain} is blocked for {p}"
            return Decision(Action.BLOCK, p, 6, reason, rule="profile block", listed=domain)
    for entry, search in profile.block_regexes:
        if search(name):
            trace.append(f"6. blocked: {name} matches {entry} on the block list of profile {p}")
            reason = f"{name} matches {entry}, blocked for {p}"
            return Decision(Action.BLOCK, p, 6, reason, rule="profile block", listed=entry)
    in_categories = sorted({c for _n, c, _s, a in matches if not a})
    trace.append(
        "6. not in a blocked category"
        + (f" (listed in {', '.join(in_categories)}, not blocked now)" if in_categories else "")
    )
    return None


def excepted(matches: list[Match], category: str) -> str | None:
    """Why an allow entry excepts the name from `category` (one of that category's lists, or
    the never-block list, which counts for every category); None when none does."""
    for listed, found, source, allow in matches:
        if allow and found == category:
            return f"{listed} is excepted from {category} by an allow entry in {source}"
    for listed, found, source, allow in matches:
        if allow and found == NEVER_BLOCK_CATEGORY:
            return f"{listed} is on the never-block list ({source}), which every category respects"
    return None


def rewrite(profile: Profile, name: str, trace: Trace) -> Decision | None:
    """7. SafeSearch and YouTube: the search engines answered with their safe hosts."""
    target = safe_host(profile.safesearch, profile.youtube, name)
    if target is None:
        trace.append("7. no SafeSearch rewrite applies")
        return None
    p = profile.config.name
    trace.append(f"7. rewritten: {name} -> {target}")
    return Decision(Action.REWRITE, p, 7, f"SafeSearch for {p}: {target}", target=target)


def _category_rule(profile: Profile, state: State, category: str) -> str:
    for rule in state.active:
        if category in rule.block:
            return rule_label(rule)
    if category in profile.config.categories:
        return f"profile {profile.config.name} categories"
    return f"age band {profile.band}"


def _listed_category(matches: list[Match], blocked: frozenset[str]) -> tuple[str, str, str] | None:
    """(listed name, category, source) of the first list holding the name, preferring the
    categories the profile blocks anyway; None when no list holds it."""
    listed = [(n, c, s) for n, c, s, allow in matches if not allow]
    for found in listed:
        if found[1] in blocked:
            return found
    return listed[0] if listed else None


def held(listed: str, category: str, source: str, also: str = "") -> str:
    """Why a name is in a category, for a parent: the list that holds it, or the name model."""
    if category in MODEL_CATEGORIES:  # source: "name model (score 0.89)"
        kind = category.removesuffix("-suspect")  # adult, gambling
        article = "an" if kind[0] in "aeiou" else "a"
        return f"{listed} {also}looks like {article} {kind} site to the {source}"
    return f"{listed} is {also}listed in {source}"
