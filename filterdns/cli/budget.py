"""`filterdns budget [PROFILE]`: each time budget's minutes used and left today.

It reads the minutes the server stored (with its log batches, so at most a flush interval
behind) from the database, as the state directory's owner like the other policy commands;
`filterdns.actions` does the work (`budgets`, `top_up`), for the web app too.
"""

from __future__ import annotations

import argparse
import json
import math

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from filterdns import actions
from filterdns.cli.pause import who
from filterdns.config import Config
from filterdns.errors import FilterDnsError


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> list[argparse.ArgumentParser]:
    """Add `budget` to the command-line parser; returns it."""
    budget = sub.add_parser("budget", help="each time budget's minutes used and left today")
    budget.add_argument("profile", nargs="?", metavar="PROFILE", help="one profile (default: all)")
    return [budget]


def top_up(config: Config, args: argparse.Namespace, seconds: float, console: Console) -> int:
    """`grant PROFILE --budget NAME --for 30m`: minutes more of a budget, until midnight in the
    profile's zone."""
    minutes = math.ceil(seconds / 60)
    try:
        made = actions.top_up(config, args.profile, args.budget, minutes, reason=args.reason,
                              by=who(), via="cli")  # fmt: skip
    except FilterDnsError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        return 1
    if args.json:
        print(json.dumps({"id": made.id, "profile": made.profile, "budget": args.budget,
                          "minutes": minutes, "expires_at": made.expires_at}))  # fmt: skip
    else:
        console.print(f"[green]made {escape(made.describe())} for {escape(made.profile)}[/green]")
    return 0


def budget(config: Config, args: argparse.Namespace, console: Console) -> int:
    """Print each budget of the profile (or of every profile) with its minutes today."""
    try:
        rows = actions.budgets(config, profile=args.profile)
    except FilterDnsError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        return 1
    if args.json:
        print(json.dumps([row.to_json() for row in rows]))
        return 0
    if not rows:
        console.print("no time budgets (profiles.<name>.budgets in the configuration)")
        return 0
    table = Table("profile", "budget", "categories", "used today", "left")
    for row in rows:
        left = f"{row.left} min" if row.applies else "not metered today"
        table.add_row(row.profile, row.budget, ", ".join(row.categories),
                      f"{row.used} of {row.minutes} min", left)  # fmt: skip
    console.print(table)
    return 0
