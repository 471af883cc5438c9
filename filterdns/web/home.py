"""The home page: each child or class the account may see, its state now and today's blocks.

The state is `actions.status` (what `filterdns status` prints), the count the report's own
(`report.collect.blocked_per_profile`); both read the database in a worker thread. On a
PostgreSQL log the counts are every site's, or one site's with `?instance=` (web.sites).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aiohttp import web

from filterdns import actions
from filterdns.actions import BudgetRow, ProfileStatus
from filterdns.actions.common import zone as profile_zone
from filterdns.config import Config
from filterdns.errors import FilterDnsError
from filterdns.querylog.report.collect import blocked_per_profile, opened_log, report_zone
from filterdns.web.auth import visible_profiles
from filterdns.web.child import clock, midnight, why
from filterdns.web.keys import BACKEND
from filterdns.web.render import render, texts
from filterdns.web.sites import Sites, blocked_at, chosen, sites

routes = web.RouteTableDef()


@dataclass
class ChildCard:
    """One profile on the home page."""

    name: str
    shown: str
    state: str = "allowed"
    why: str = ""
    until: str = ""
    budgets: list[BudgetRow] = field(default_factory=list)
    blocked_today: int = 0


def home_data(
    config: Config, names: Sequence[str], now: float, instance: str | None = None
) -> tuple[list[ProfileStatus], dict[str, int]]:
    """The state of the profiles `names` and the blocked lookups of each today, of every site
    or of `instance` (worker thread). FilterDnsError when the database cannot be read."""
    found = actions.status(config, actions.policy_for(config, now=now), now=now)
    since = midnight(now, report_zone(config))
    try:
        with opened_log(config) as log:  # the SQLite file, or the PostgreSQL log of every site
            if instance is None:
                counts = blocked_per_profile(log, since=since, until=now + 1)
            else:
                counts = blocked_at(log, since, now + 1, instance)
    except FileNotFoundError:  # nothing logged yet
        counts = {}
    return [s for s in found if s.profile in names], counts


def home_sites(config: Config, now: float, instance: str | None) -> Sites:
    """The sites with rows today and the one chosen (worker thread)."""
    return sites(config, midnight(now, report_zone(config)), now + 1, instance)


def card(status: ProfileStatus, count: int, config: Config, now: float,
         t: Mapping[str, str]) -> ChildCard:  # fmt: skip
    zone = profile_zone(config, status.profile)
    return ChildCard(
        status.profile, status.display_name, status.state, why(status, t),
        clock(status.until, zone, now, t), [b for b in status.budgets if b.applies], count,
    )  # fmt: skip


@routes.get("/")
async def home(request: web.Request) -> web.StreamResponse:
    backend = request.app[BACKEND]
    config = backend.config
    now = backend.wall_clock()
    names = [p.name for p in visible_profiles(request)]
    try:
        instance = chosen(config, request.query.get("instance"))
    except ValueError as exc:
        return render(request, "error.html", status=400, message=f"?instance=: {exc}")
    try:
        found, counts = await asyncio.to_thread(home_data, config, names, now, instance)
    except FilterDnsError as exc:
        return render(request, "error.html", status=503, message=str(exc))
    shown = await asyncio.to_thread(home_sites, config, now, instance)
    t = texts(request)
    cards = [card(s, counts.get(s.profile, 0), config, now, t) for s in found]
    return render(request, "home.html", children=cards, sites=shown)
