"""The child's own page (/me): the rules of this device now, in words a child can read.

Open without a login: the device is known by its address (web/lookups.py), like /ask. It says
which state the device is in and the rule responsible, when that next changes, which kinds of
sites are blocked for it, how much of each time budget is left today, what the adults have
allowed or paused for now, and where to ask for a site or for help. Written so a child can read
it and talk about it with their parents or teachers: the rules are no secret to the child they
protect.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from filterdns import actions
from filterdns.actions.common import zone
from filterdns.errors import FilterDnsError
from filterdns.policy.state import State
from filterdns.policy.values import UNTIL_RESUMED, Grant, GrantKind
from filterdns.web.auth import public
from filterdns.web.keys import BACKEND
from filterdns.web.lookups import category_word, device_of
from filterdns.web.render import render, texts

log = logging.getLogger("filterdns.web")
routes = web.RouteTableDef()


@dataclass
class Rules:
    """What /me shows."""

    state: str = "allowed"  # one of actions.STATES
    rule: str = ""  # the state in a sentence
    until: str = ""  # when it next changes, "" when nothing is scheduled
    categories: list[str] = field(default_factory=list)  # blocked kinds of sites, in words
    budgets: list[str] = field(default_factory=list)  # "video: 25 min left today"
    grants: list[str] = field(default_factory=list)  # "youtube.com is open until 17:30"


@routes.get("/me")
@public
async def me(request: web.Request) -> web.StreamResponse:
    backend = request.app[BACKEND]
    config, now = backend.config, backend.wall_clock()
    device = await device_of(request)
    profile = device.profile
    try:
        found = await asyncio.to_thread(actions.status, config, backend.policy, now=now)
        status = next((s for s in found if s.profile == profile), None)
    except FilterDnsError as exc:  # the database cannot be read: the schedule alone
        log.warning("web: /me without grants and budgets: %s", exc)
        status = None
    state = backend.policy.state_of(profile, now)
    rules = describe(texts(request), state, status, zone(config, profile), now)
    return render(request, "me.html", rules=rules, who=config.display_name(profile),
                  device=device.name or "")  # fmt: skip


def describe(
    t: Any, state: State, status: actions.ProfileStatus | None, tz: ZoneInfo, now: float
) -> Rules:
    """The rules of one profile now, in the words of `t` (pure: a test reads it directly)."""
    kind = status.state if status is not None else _kind(state)
    label = (status.label if status is not None else None) or _label(state)
    until = status.until if status is not None else _finite(state.change_at)
    rules = Rules(state=kind, until=_at(until, tz, now))
    if kind == "paused":
        end = status.paused_until if status is not None else None
        rules.rule = t["asks_me_paused"]
        rules.until = "" if end is None or end >= UNTIL_RESUMED else _at(end, tz, now)
    elif kind in ("bedtime", "blocked"):
        rules.rule = t[f"asks_me_{kind}"].format(rule=label)
    elif kind == "restricted" and state.spent and not _rule_blocks(state):
        rules.rule = t["asks_me_budget_spent"]
    elif kind == "restricted":
        rules.rule = t["asks_me_restricted"].format(rule=label)
    else:
        rules.rule = t["asks_me_allowed"]
    rules.categories = sorted({category_word(t, c) for c in state.blocked})
    if status is not None:
        rules.budgets = [t["asks_me_budget"].format(budget=b.budget, minutes=b.left)
                         for b in status.budgets if b.applies]  # fmt: skip
        rules.grants = [g for g in (_grant(t, g, tz, now) for g in status.grants) if g]
    return rules


def _kind(state: State) -> str:
    if state.paused:
        return "paused"
    if state.block_all:
        return "bedtime" if state.block_all[0].name == "bedtime" else "blocked"
    return "restricted" if state.spent else "allowed"


def _label(state: State) -> str:
    """The name of the rule in force (the profile's own first), "" for none."""
    if state.block_all:
        return state.block_all[0].name
    return next((rule.name for rule in state.active if rule.block), "")


def _rule_blocks(state: State) -> bool:
    return any(rule.block for rule in state.active)


def _grant(t: Any, grant: Grant, tz: ZoneInfo, now: float) -> str:
    until = _at(grant.expires_at, tz, now)
    if grant.kind is GrantKind.ALLOW_DOMAIN:
        return str(t["asks_me_open_site"].format(site=grant.domain, time=until))
    if grant.kind is GrantKind.ALLOW_CATEGORY:
        word = category_word(t, grant.category)
        return str(t["asks_me_open_category"].format(category=word, time=until))
    if grant.kind is GrantKind.BUDGET:
        return str(t["asks_me_more_minutes"].format(minutes=grant.minutes, budget=grant.category))
    return ""  # a pause is the state itself


def _finite(ts: float) -> float | None:
    return ts if math.isfinite(ts) else None


def _at(ts: float | None, tz: ZoneInfo, now: float) -> str:
    """ "17:30" today, "06:00 01/12" another day, "" for none."""
    if ts is None or not math.isfinite(ts) or ts >= UNTIL_RESUMED:
        return ""
    at = datetime.fromtimestamp(ts, tz)
    if at.date() == datetime.fromtimestamp(now, tz).date():
        return f"{at:%H:%M}"
    return f"{at:%H:%M %d/%m}"
