"""`filterdns status [PROFILE]`: each profile's state now, as a parent's home screen shows it.

The state (allowed, bedtime, restricted, blocked or paused), the rule or grant responsible,
when it next changes, the time budgets left today and the grants in force, from
`filterdns.actions.status` over a policy built from the configuration and the database (the
grants in force and the budget minutes the server stored), as the web app shows them.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from filterdns import actions
from filterdns.actions.common import zone
from filterdns.actions.grants import describe
from filterdns.config import Config
from filterdns.errors import FilterDnsError
from filterdns.policy.values import BLOCKING_KINDS, UNTIL_RESUMED

COLOURS = {"allowed": "green", "restricted": "yellow", "bedtime": "blue", "blocked": "red",
           "paused": "red"}  # fmt: skip


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> list[argparse.ArgumentParser]:
    """Add `status` to the command-line parser; returns it."""
    status = sub.add_parser("status", help="each profile's state now: allowed, paused, bedtime...")
    status.add_argument("profile", nargs="?", metavar="PROFILE", help="one profile (default: all)")
    return [status]


def status(config: Config, args: argparse.Namespace, console: Console) -> int:
    """Print each profile's state now (or one profile's)."""
    now = time.time()
    try:
        if args.profile is not None:
            actions.check_profiles(config, [args.profile])
        found = actions.status(config, actions.policy_for(config, now=now), now=now)
    except FilterDnsError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        return 1
    found = [s for s in found if args.profile in (None, s.profile)]
    if args.json:
        print(json.dumps([s.to_json() for s in found]))
        return 0
    table = Table("profile", "state", "why", "until", "budgets today", "grants")
    for s in found:
        colour = COLOURS[s.state]
        if s.state == "paused" and s.paused_until is not None and s.paused_until >= UNTIL_RESUMED:
            until = "resumed"
        else:
            until = "-" if s.until is None else _when(s.until, config, s.profile, now)
        budgets = [
            f"{b.budget}: {b.left} of {b.minutes} min left" if b.applies else f"{b.budget}: -"
            for b in s.budgets
        ]
        grants = [describe(config, g, now) for g in s.grants if g.kind not in BLOCKING_KINDS]
        name = s.profile if s.display_name == s.profile else f"{s.display_name} ({s.profile})"
        table.add_row(escape(name), f"[{colour}]{s.state}[/{colour}]", escape(s.label or ""),
                      until, escape("\n".join(budgets)), escape("\n".join(grants)))  # fmt: skip
    console.print(table)
    return 0


def _when(at: float, config: Config, profile: str, now: float) -> str:
    """ "17:30" today in the profile's zone, else "2026-12-01 06:00"."""
    tz = zone(config, profile)
    end = datetime.fromtimestamp(at, tz)
    return (
        f"{end:%H:%M}"
        if end.date() == datetime.fromtimestamp(now, tz).date()
        else f"{end:%Y-%m-%d %H:%M}"
    )
