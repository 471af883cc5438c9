"""The home page: each child or class the account may see, its state now and today's blocks."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from aiohttp import web

from filterdns.policy.timezones import zone_of
from filterdns.querylog import dbfile
from filterdns.web.auth import visible_profiles
from filterdns.web.keys import BACKEND
from filterdns.web.render import render

routes = web.RouteTableDef()


@dataclass
class ChildCard:
    """One profile on the home page."""

    name: str
    shown: str
    state: str = "allowed"
    why: str = ""
    until: str = ""
    budgets: list[object] = field(default_factory=list)
    blocked_today: int = 0


def blocked_since(database: Path, since: float) -> dict[str, int]:
    """Blocked lookups per profile since `since` (none when there is no log yet)."""
    try:
        db = dbfile.open_reader(database)
    except FileNotFoundError:
        return {}
    with contextlib.closing(db):
        try:
            rows = db.execute(
                "SELECT profile, COUNT(*) FROM queries WHERE ts >= ? AND kind = 'blocked' "
                "GROUP BY profile",
                (since,),
            ).fetchall()
        except sqlite3.Error:
            return {}
    return {str(profile): int(count) for profile, count in rows}


def midnight(now: float, zone: object) -> float:
    at = datetime.fromtimestamp(now, zone)  # type: ignore[arg-type]
    return at.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


@routes.get("/")
async def home(request: web.Request) -> web.StreamResponse:
    backend = request.app[BACKEND]
    config = backend.config
    now = backend.wall_clock()
    zone = zone_of(None, config.server.timezone)
    counts = await asyncio.to_thread(blocked_since, config.log.database, midnight(now, zone))
    cards = [
        ChildCard(p.name, p.display_name or p.name, blocked_today=counts.get(p.name, 0))
        for p in visible_profiles(request)
    ]
    return render(request, "home.html", children=cards)
