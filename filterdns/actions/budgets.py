"""Each time budget's minutes used and left today, as `filterdns budget` and the web app show
them: the minutes the server stored (with its log batches, so at most a flush interval behind)
plus the top-ups granted today."""

from __future__ import annotations

import time
from dataclasses import dataclass

from filterdns.actions.common import check_profiles, zone
from filterdns.config import Config
from filterdns.errors import FilterDnsError
from filterdns.policy.budgets import applies, day_of
from filterdns.policy.grants import grant_store
from filterdns.policy.values import Grant, GrantKind
from filterdns.querylog.store import read_usage


@dataclass(frozen=True, slots=True)
class BudgetRow:
    """One budget of one profile today."""

    profile: str
    budget: str
    day: str  # YYYY-MM-DD in the profile's zone
    categories: tuple[str, ...]
    applies: bool  # whether the budget meters today (one of its days)
    used: int  # minutes used today
    minutes: int  # minutes it has today: per_day plus top-ups
    left: int

    def to_json(self) -> dict[str, object]:
        """The keys of `filterdns budget --json`."""
        return {
            "profile": self.profile, "budget": self.budget, "day": self.day,
            "categories": list(self.categories), "applies": self.applies, "used": self.used,
            "minutes": self.minutes, "left": self.left,
        }  # fmt: skip


def budgets(
    config: Config,
    *,
    profile: str | None = None,
    now: float | None = None,
    grants: list[Grant] | None = None,
) -> list[BudgetRow]:
    """Every budget of the profile (of every profile) with its minutes today; `grants`, when
    the caller has read them, saves reading them again. FilterDnsError when the database cannot
    be read."""
    if profile is not None:
        check_profiles(config, [profile])
    now = time.time() if now is None else now
    stored = {(p, b, d): m for p, b, d, m in read_usage(config.log.database, now)}
    if grants is None:
        try:
            grants = grant_store(config.log).active(now=now)
        except FilterDnsError:  # the minutes are still worth showing
            grants = []
    extra: dict[tuple[str, str | None], int] = {}  # top-up minutes by (profile, budget)
    for g in grants:
        if g.kind is GrantKind.BUDGET and g.expires_at > now:
            extra[g.profile, g.category] = extra.get((g.profile, g.category), 0) + g.minutes
    rows: list[BudgetRow] = []
    for each in config.profiles:
        if profile not in (None, each.name):
            continue
        day = day_of(now, zone(config, each.name))
        for entry in each.budgets:
            limit = int(entry.per_day // 60) + extra.get((each.name, entry.name), 0)
            used = stored.get((each.name, entry.name, day.isoformat()), 0)
            rows.append(BudgetRow(
                each.name, entry.name, day.isoformat(), tuple(entry.categories),
                applies(entry, day), used, limit, max(0, limit - used),
            ))  # fmt: skip
    return rows
