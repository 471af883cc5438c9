"""What the actions share: their error, the checks of profile names, time zones, the texts of
an end time, and the record of a change in the `changes` table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from filterdns.config import DEFAULT_CATEGORIES, Config
from filterdns.errors import FilterDnsError
from filterdns.policy.timezones import zone_of
from filterdns.policy.values import UNTIL_RESUMED
from filterdns.querylog import changes

VIAS = changes.VIAS  # the front doors a change comes through: "cli", "web", "api"


class ActionError(FilterDnsError):
    """An action that cannot be carried out as asked; the message says why in one line."""


def check_profiles(config: Config, profiles: Sequence[str]) -> None:
    """ActionError unless `profiles` names at least one profile, all known."""
    known = [p.name for p in config.profiles]
    if not profiles:
        raise ActionError(f"name at least one profile; profiles: {', '.join(known)}")
    for name in profiles:
        if name not in known:
            raise ActionError(f"no profile {name!r}; profiles: {', '.join(known)}")


def check_via(via: str) -> None:
    if via not in VIAS:
        raise ActionError(f"via {via!r} is not one of {', '.join(VIAS)}")


def categories(config: Config) -> list[str]:
    """Every category a grant may allow: the built-in ones and those of `categories:`."""
    return sorted({*DEFAULT_CATEGORIES, *(name for name, _ in config.categories)})


def zone(config: Config, profile: str) -> ZoneInfo:
    """The time zone of a profile: its own, else `server.timezone`, else the system's (that of
    the server for a profile no longer configured)."""
    own = next((p.timezone for p in config.profiles if p.name == profile), None)
    return zone_of(own, config.server.timezone)


def until_text(expires_at: float, tz: ZoneInfo, now: float) -> str:
    """ "until resumed", "until 17:30" (today in `tz`), else "until 2026-12-01 06:00"."""
    if expires_at >= UNTIL_RESUMED:
        return "until resumed"
    end = datetime.fromtimestamp(expires_at, tz)
    if end.date() == datetime.fromtimestamp(now, tz).date():
        return f"until {end:%H:%M}"
    return f"until {end:%Y-%m-%d %H:%M}"


def record(
    config: Config, *, by: str, via: str, action: str, rows: Sequence[tuple[str, str]], now: float
) -> None:
    """One row of the `changes` table per (profile, detail); a row that cannot be written is
    logged as a warning (the change itself is made)."""
    for profile, detail in rows:
        changes.record(config.log, who=by, via=via, action=action, profile=profile,
                       detail=detail, now=now)  # fmt: skip
