"""Grants, pauses and overrides: the changes a parent or a teacher makes to what a profile may do
now, each a row of the `grants` table (policy/grants.py) that the running server applies within
a second, and a row of the `changes` table that says who made it and through which door."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from filterdns.actions.common import (
    ActionError,
    categories,
    check_profiles,
    check_via,
    record,
    until_text,
    zone,
)
from filterdns.config import Config, is_domain_name
from filterdns.dns.names import normalize_name
from filterdns.policy.budgets import next_midnight
from filterdns.policy.grants import grant_store
from filterdns.policy.values import BLOCKING_KINDS, Grant, GrantKind


def pause(
    config: Config,
    profiles: Sequence[str],
    ends: Mapping[str, float],
    *,
    reason: str = "",
    by: str,
    via: str,
    now: float | None = None,
) -> list[Grant]:
    """Block everything but the profiles' always-allowed names until `ends` (UNTIL_RESUMED:
    until `resume`)."""
    return _make(config, profiles, ends, [(GrantKind.PAUSE, None)], reason=reason, by=by,
                 via=via, action="pause", now=now)  # fmt: skip


def block_all(
    config: Config,
    profiles: Sequence[str],
    ends: Mapping[str, float],
    *,
    reason: str = "",
    by: str,
    via: str,
    now: float | None = None,
) -> list[Grant]:
    """Block everything for the profiles until `ends` (an exam); `resume` ends it too."""
    return _make(config, profiles, ends, [(GrantKind.BLOCK_ALL, None)], reason=reason, by=by,
                 via=via, action="block-all", now=now)  # fmt: skip


def allow_domains(
    config: Config,
    profiles: Sequence[str],
    domains: Sequence[str],
    ends: Mapping[str, float],
    *,
    reason: str = "",
    by: str,
    via: str,
    now: float | None = None,
) -> list[Grant]:
    """Allow the domains (and their subdomains) for the profiles until `ends`: one grant per
    profile and name. The names are normalised ("YouTube.com." -> "youtube.com")."""
    names = [_domain(text) for text in domains]
    if not names:
        raise ActionError("name at least one domain to allow")
    what = [(GrantKind.ALLOW_DOMAIN, name) for name in dict.fromkeys(names)]
    return _make(config, profiles, ends, what, reason=reason, by=by, via=via, action="allow",
                 now=now)  # fmt: skip


def allow_category(
    config: Config,
    profile: str,
    category: str,
    ends: Mapping[str, float],
    *,
    reason: str,
    by: str,
    via: str,
    now: float | None = None,
) -> list[Grant]:
    """Allow a category normally blocked for the profile until `ends[profile]`."""
    check_profiles(config, [profile])
    valid = categories(config)
    if category not in valid:
        raise ActionError(f"no category {category!r}; categories: {', '.join(valid)}")
    return _make(config, [profile], ends, [(GrantKind.ALLOW_CATEGORY, category)], reason=reason,
                 by=by, via=via, action="allow-category", now=now)  # fmt: skip


def top_up(
    config: Config,
    profile: str,
    budget: str,
    minutes: int,
    *,
    reason: str = "",
    by: str,
    via: str,
    now: float | None = None,
) -> Grant:
    """`minutes` more of a time budget of the profile today (until midnight in its zone)."""
    check_profiles(config, [profile])
    check_via(via)
    names = [b.name for b in config.profile(profile).budgets]
    if budget not in names:
        raise ActionError(
            f"{profile} has no budget {budget!r}; budgets: {', '.join(names) or 'none'}"
        )
    if minutes <= 0:
        raise ActionError("the minutes of a top-up must be more than 0")
    now = time.time() if now is None else now
    midnight = next_midnight(now, zone(config, profile))
    (made,) = grant_store(config.log).add_many(
        [profile], midnight, GrantKind.BUDGET, category=budget, reason=reason, created_by=by,
        now=now, minutes=minutes,
    )  # fmt: skip
    record(config, by=by, via=via, action="top-up", rows=[_row(config, made, now)], now=now)
    return made


def resume(
    config: Config, profiles: Sequence[str], *, by: str, via: str, now: float | None = None
) -> list[Grant]:
    """End the pauses and block-all overrides of the profiles now; those it ended."""
    check_profiles(config, profiles)
    check_via(via)
    now = time.time() if now is None else now
    ended = grant_store(config.log).end(profiles, sorted(BLOCKING_KINDS), now=now)
    rows = [(g.profile, f"ended: {describe(config, g, now)}") for g in ended]
    record(config, by=by, via=via, action="resume", rows=rows, now=now)
    return ended


def revoke(
    config: Config, grant_id: int, *, by: str, via: str, now: float | None = None
) -> Grant | None:
    """End a grant, pause or override now; it, or None when no such one is in force."""
    check_via(via)
    now = time.time() if now is None else now
    gone = grant_store(config.log).revoke(grant_id, now=now)
    if gone is not None:
        rows = [(gone.profile, f"revoked #{gone.id}: {describe(config, gone, now)}")]
        record(config, by=by, via=via, action="revoke", rows=rows, now=now)
    return gone


def active(config: Config, *, profile: str | None = None, now: float | None = None) -> list[Grant]:
    """The grants, pauses and overrides in force (of one profile), soonest to end first."""
    if profile is not None:
        check_profiles(config, [profile])
    found = grant_store(config.log).active(now=now)
    return [g for g in found if profile in (None, g.profile)]


def describe(config: Config, grant: Grant, now: float) -> str:
    """A short text in the profile's zone: "youtube.com allowed until 17:30", "paused until
    resumed", "+30 min of budget games until 2026-12-01 00:00"."""
    until = until_text(grant.expires_at, zone(config, grant.profile), now)
    if grant.kind is GrantKind.PAUSE:
        return f"paused {until}"
    if grant.kind is GrantKind.BLOCK_ALL:
        return f"everything blocked {until}"
    if grant.kind is GrantKind.BUDGET:
        return f"+{grant.minutes} min of budget {grant.category} {until}"
    return f"{grant.domain or f'category {grant.category}'} allowed {until}"


def _make(
    config: Config,
    profiles: Sequence[str],
    ends: Mapping[str, float],
    what: Sequence[tuple[GrantKind, str | None]],
    *,
    reason: str,
    by: str,
    via: str,
    action: str,
    now: float | None,
) -> list[Grant]:
    """One grant per profile and item, all in the database before the first is recorded."""
    check_profiles(config, profiles)
    check_via(via)
    now = time.time() if now is None else now
    for profile in profiles:
        if profile not in ends:
            raise ActionError(f"no end given for {profile}")
        if ends[profile] <= now:
            raise ActionError(f"the end given for {profile} is already past")
    store = grant_store(config.log)
    made: list[Grant] = []
    for profile in dict.fromkeys(profiles):
        for kind, item in what:
            domain, category = (item, None) if kind is GrantKind.ALLOW_DOMAIN else (None, item)
            made += store.add_many([profile], ends[profile], kind, domain=domain,
                                   category=category, reason=reason, created_by=by,
                                   now=now)  # fmt: skip
    rows = [_row(config, g, now) for g in made]
    record(config, by=by, via=via, action=action, rows=rows, now=now)
    return made


def _row(config: Config, grant: Grant, now: float) -> tuple[str, str]:
    note = f" ({grant.reason})" if grant.reason else ""
    return grant.profile, f"{describe(config, grant, now)}{note}"


def _domain(text: str) -> str:
    domain = normalize_name(text)
    if not is_domain_name(domain):
        raise ActionError(f"{text!r} is not a domain name")
    return domain
