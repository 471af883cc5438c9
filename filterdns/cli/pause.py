"""The `pause`, `resume` and `override` commands: everything blocked, or a few names allowed,
for some profiles, now.

`pause minh` blocks everything but minh's always-allowed names (its `allow` list, its domain
grants) until `resume minh`, or for `--for 30m`, or `--until 10:45`; `override 7a 7b --allow
khanacademy.org --for 45m` is a domain grant for several profiles at once; `override 7a
--block-all --until 10:45 --reason exam` a timed pause. All are rows of the `grants` table
(grants.py, with their kind and who made them), so the running server applies them within a
second, they end by themselves, and `override --list` / `--revoke ID` (like `grants` and
`revoke`) show and end them.

Who made one is the invoking user: `SUDO_USER` under sudo, else the login name (the command may
then run as the state directory's owner, which is not who asked). The work itself is done by
`filterdns.actions`, which the web app calls too; this module reads the options and prints.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import time
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.markup import escape

from filterdns import actions
from filterdns.config import Config
from filterdns.errors import FilterDnsError
from filterdns.policy.values import BLOCKING_KINDS, Grant, GrantKind

clock = time.time  # what "now" and "today" are (tests set it)


class UsageError(FilterDnsError):
    """A command line that cannot be carried out; the message says why."""


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> list[argparse.ArgumentParser]:
    """Add `pause`, `resume` and `override` to the command-line parser; returns them."""
    pause = sub.add_parser("pause", help="block everything for profiles now (until resumed)")
    pause.add_argument("profiles", nargs="+", metavar="PROFILE")
    _add_when(pause)
    pause.add_argument("--reason", default="", help="a note kept with the pause")
    resume = sub.add_parser("resume", help="end the pauses and block-all overrides of profiles")
    resume.add_argument("profiles", nargs="+", metavar="PROFILE")
    override = sub.add_parser(
        "override", help="allow names, or block everything, for profiles for a while"
    )
    override.add_argument("profiles", nargs="*", metavar="PROFILE")
    override.add_argument("--allow", action="append", default=[], metavar="NAME",
                          help="a domain (and its subdomains); repeat for more")  # fmt: skip
    override.add_argument("--block-all", action="store_true", help="block everything (an exam)")
    _add_when(override)
    override.add_argument("--reason", default="", help="a note kept with the override")
    override.add_argument("--list", action="store_true", help="the grants and overrides in force")
    override.add_argument("--revoke", type=int, metavar="ID", help="end an override now")
    return [pause, resume, override]


def _add_when(parser: argparse.ArgumentParser) -> None:
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--for", dest="duration", help="how long, with a unit: 30m, 2h")
    when.add_argument("--until", help="an end time today, HH:MM in the profile's time zone, or "
                      "tomorrow (06:00 tomorrow morning there)")  # fmt: skip


def pause(config: Config, args: argparse.Namespace, console: Console) -> int:
    """Block everything for the profiles, until resumed or for a while."""
    try:
        now = clock()
        ends = _ends(config, args, required=False, now=now)
        made = actions.pause(config, args.profiles, ends, reason=args.reason, by=who(),
                             via="cli", now=now)  # fmt: skip
    except FilterDnsError as exc:
        return _error(console, str(exc))
    return _show(config, args, console, made)


def override(config: Config, args: argparse.Namespace, console: Console) -> int:
    """Allow names, or block everything, for the profiles until a time; or list, or revoke."""
    if args.list:
        return _list(config, args, console)
    if args.revoke is not None:
        return _revoke(config, args.revoke, console)
    try:
        actions.check_profiles(config, args.profiles)
        if bool(args.allow) == args.block_all:
            raise UsageError("say what to do: --allow NAME (repeatable) or --block-all")
        now = clock()
        ends = _ends(config, args, required=True, now=now)
        if args.block_all:
            made = actions.block_all(config, args.profiles, ends, reason=args.reason, by=who(),
                                     via="cli", now=now)  # fmt: skip
        else:
            made = actions.allow_domains(config, args.profiles, args.allow, ends,
                                         reason=args.reason, by=who(), via="cli",
                                         now=now)  # fmt: skip
    except FilterDnsError as exc:
        return _error(console, str(exc))
    return _show(config, args, console, made)


def resume(config: Config, args: argparse.Namespace, console: Console) -> int:
    """End the pauses and block-all overrides of the profiles now."""
    try:
        ended = actions.resume(config, args.profiles, by=who(), via="cli", now=clock())
    except FilterDnsError as exc:
        return _error(console, str(exc))
    if args.json:
        print(json.dumps([g.to_json() for g in ended]))
    elif not ended:
        console.print(f"{escape(', '.join(args.profiles))}: nothing was paused", highlight=False)
    for g in [] if args.json else ended:
        console.print(f"ended {escape(g.describe())} of {escape(g.profile)}", highlight=False)
    return 0


def who() -> str:
    """The invoking user: `SUDO_USER` under sudo, else the login name."""
    sudo = os.environ.get("SUDO_USER", "")
    if sudo:
        return sudo
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _show(config: Config, args: argparse.Namespace, console: Console, made: list[Grant]) -> int:
    """What was made: every row is in the database before the first is said made."""
    if args.json:
        print(json.dumps([g.to_json() for g in made]))
        return 0
    for g in made:
        zone = _zone(config, g.profile)
        text = g.describe() if g.kind is GrantKind.ALLOW_DOMAIN else g.blocking_rule(zone)
        console.print(f"[green]{escape(g.profile)}: {escape(text)}[/green]", highlight=False)
    return 0


def _list(config: Config, args: argparse.Namespace, console: Console) -> int:
    try:
        active = actions.active(config)
    except FilterDnsError as exc:
        return _error(console, str(exc))
    if args.json:
        print(json.dumps([g.to_json() for g in active]))
        return 0
    if not active:
        console.print("no grants, pauses or overrides in force")
    for g in active:
        console.print(escape(describe_row(config, g)), highlight=False)
    return 0


def describe_row(config: Config, g: Grant) -> str:
    """One line of a listing: "#4 minh: paused by anna until 10:45 (exam)"."""
    zone = _zone(config, g.profile)
    if g.kind in BLOCKING_KINDS:
        what = g.blocking_rule(zone).rsplit(", #", 1)[0]
    else:
        what = f"{g.domain or f'category {g.category}'} allowed {g.until(zone)}"
        what += f" by {g.created_by}" if g.created_by else ""
        what += f" ({g.reason})" if g.reason else ""
    return f"#{g.id} {g.profile}: {what}"


def _revoke(config: Config, grant_id: int, console: Console) -> int:
    try:
        gone = actions.revoke(config, grant_id, by=who(), via="cli")
    except FilterDnsError as exc:
        return _error(console, str(exc))
    if gone is None:
        return _error(console, f"no grant or override #{grant_id} in force")
    console.print(f"revoked {escape(gone.describe())} of {escape(gone.profile)}")
    return 0


def _ends(
    config: Config, args: argparse.Namespace, *, required: bool, now: float
) -> dict[str, float]:
    """When it ends for each profile: --for, --until HH:MM (in each profile's zone) or --until
    tomorrow (the next 06:00 there)."""
    tomorrow = (args.until or "").strip().lower() == "tomorrow"
    until = None if tomorrow else args.until
    return actions.ends_for(config, args.profiles, duration=args.duration, until=until,
                            tomorrow=tomorrow, required=required, now=now)  # fmt: skip


def _zone(config: Config, profile: str) -> ZoneInfo:
    return actions.common.zone(config, profile)


def _error(console: Console, message: str) -> int:
    console.print(f"[red]{escape(message)}[/red]", highlight=False)
    return 1
