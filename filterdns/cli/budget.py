"""`filterdns budget [PROFILE]`: each time budget's minutes used and left today.

It reads the minutes the server stored (with its log batches, so at most a flush interval
behind) from the database, as the state directory's owner like the other policy commands.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from filterdns.cli.pause import who
from filterdns.config import Config
from filterdns.errors import FilterDnsError
from filterdns.policy.budgets import applies, day_of, next_midnight
from filterdns.policy.grants import GrantStore
from filterdns.policy.timezones import zone_of
from filterdns.policy.values import GrantKind
from filterdns.querylog.store import read_usage


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
    profile = config.profile(args.profile)
    names = [b.name for b in profile.budgets]
    if args.budget not in names:
        known = ", ".join(names) or "none"
        console.print(f"[red]{escape(args.profile)} has no budget {escape(args.budget)!r}; "
                      f"budgets: {escape(known)}[/red]")  # fmt: skip
        return 1
    now = time.time()
    midnight = next_midnight(now, zone_of(profile.timezone, config.server.timezone))
    minutes = math.ceil(seconds / 60)
    try:
        (made,) = GrantStore(config.log.database).add_many(
            [profile.name], midnight, GrantKind.BUDGET, category=args.budget,
            reason=args.reason, created_by=who(), now=now, minutes=minutes,
        )  # fmt: skip
    except FilterDnsError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        return 1
    if args.json:
        print(json.dumps({"id": made.id, "profile": made.profile, "budget": args.budget,
                          "minutes": minutes, "expires_at": made.expires_at}))  # fmt: skip
    else:
        console.print(f"[green]made {escape(made.describe())} for {escape(made.profile)}[/green]")
    return 0


def budget(config: Config, args: argparse.Namespace, console: Console) -> int:
    """Print each budget of the profile (or of every profile) with its minutes today."""
    names = [p.name for p in config.profiles]
    if args.profile is not None and args.profile not in names:
        console.print(
            f"[red]no profile {escape(args.profile)!r}; profiles: {', '.join(names)}[/red]"
        )
        return 1
    now = time.time()
    try:
        stored = {(p, b, d): m for p, b, d, m in read_usage(config.log.database, now)}
    except FilterDnsError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        return 1
    try:
        grants = GrantStore(config.log.database).active(now=now)
    except FilterDnsError:
        grants = []
    extra: dict[tuple[str, str | None], int] = {}  # top-up minutes by (profile, budget)
    for g in grants:
        if g.kind is GrantKind.BUDGET:
            extra[g.profile, g.category] = extra.get((g.profile, g.category), 0) + g.minutes
    rows: list[dict[str, Any]] = []
    for profile in config.profiles:
        if args.profile not in (None, profile.name):
            continue
        day = day_of(now, zone_of(profile.timezone, config.server.timezone))
        for entry in profile.budgets:
            limit = int(entry.per_day // 60) + extra.get((profile.name, entry.name), 0)
            used = stored.get((profile.name, entry.name, day.isoformat()), 0)
            rows.append({
                "profile": profile.name, "budget": entry.name, "day": day.isoformat(),
                "categories": list(entry.categories), "applies": applies(entry, day),
                "used": used, "minutes": limit, "left": max(0, limit - used),
            })  # fmt: skip
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        console.print("no time budgets (profiles.<name>.budgets in the configuration)")
        return 0
    table = Table("profile", "budget", "categories", "used today", "left")
    for row in rows:
        left = f"{row['left']} min" if row["applies"] else "not metered today"
        table.add_row(str(row["profile"]), str(row["budget"]), ", ".join(row["categories"]),
                      f"{row['used']} of {row['minutes']} min", left)  # fmt: skip
    console.print(table)
    return 0
