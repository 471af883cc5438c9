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
then run as the state directory's owner, which is not who asked).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.markup import escape

from filterdns.config import Config, is_domain_name
from filterdns.config.duration import MissingUnitError, parse_span
from filterdns.dns.names import normalize_name
from filterdns.errors import FilterDnsError
from filterdns.policy.grants import GrantStore
from filterdns.policy.timezones import zone_of
from filterdns.policy.values import BLOCKING_KINDS, UNTIL_RESUMED, Grant, GrantKind

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
    when.add_argument("--until", help="an end time today, HH:MM in the profile's time zone")


def pause(config: Config, args: argparse.Namespace, console: Console) -> int:
    """Block everything for the profiles, until resumed or for a while."""
    try:
        _check_profiles(config, args.profiles)
        ends = _ends(config, args, required=False)
    except UsageError as exc:
        return _error(console, str(exc))
    return _make(config, args, console, ends, [(GrantKind.PAUSE, None)])


def override(config: Config, args: argparse.Namespace, console: Console) -> int:
    """Allow names, or block everything, for the profiles until a time; or list, or revoke."""
    if args.list:
        return _list(config, args, console)
    if args.revoke is not None:
        return _revoke(config, args.revoke, console)
    try:
        _check_profiles(config, args.profiles)
        if bool(args.allow) == args.block_all:
            raise UsageError("say what to do: --allow NAME (repeatable) or --block-all")
        ends = _ends(config, args, required=True)
        names = [_domain(text) for text in args.allow]
    except UsageError as exc:
        return _error(console, str(exc))
    if args.block_all:
        return _make(config, args, console, ends, [(GrantKind.BLOCK_ALL, None)])
    return _make(config, args, console, ends, [(GrantKind.ALLOW_DOMAIN, n) for n in names])


def resume(config: Config, args: argparse.Namespace, console: Console) -> int:
    """End the pauses and block-all overrides of the profiles now."""
    try:
        _check_profiles(config, args.profiles)
        ended = GrantStore(config.log.database).end(args.profiles, sorted(BLOCKING_KINDS))
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


def _make(
    config: Config,
    args: argparse.Namespace,
    console: Console,
    ends: dict[str, float],
    what: list[tuple[GrantKind, str | None]],
) -> int:
    """One row per profile and name, all in the database before the first is said made."""
    store = GrantStore(config.log.database)
    made: list[Grant] = []
    try:
        for profile, expires in ends.items():
            for kind, domain in what:
                made += store.add_many([profile], expires, kind, domain=domain,
                                       reason=args.reason, created_by=who())  # fmt: skip
    except FilterDnsError as exc:
        return _error(console, str(exc))
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
        active = GrantStore(config.log.database).active()
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
        gone = GrantStore(config.log.database).revoke(grant_id)
    except FilterDnsError as exc:
        return _error(console, str(exc))
    if gone is None:
        return _error(console, f"no grant or override #{grant_id} in force")
    console.print(f"revoked {escape(gone.describe())} of {escape(gone.profile)}")
    return 0


def _check_profiles(config: Config, profiles: list[str]) -> None:
    known = [p.name for p in config.profiles]
    if not profiles:
        raise UsageError(f"name at least one profile; profiles: {', '.join(known)}")
    for name in profiles:
        if name not in known:
            raise UsageError(f"no profile {name!r}; profiles: {', '.join(known)}")


def _ends(config: Config, args: argparse.Namespace, *, required: bool) -> dict[str, float]:
    """When it ends for each profile (an --until is read in each profile's time zone)."""
    now = clock()
    if args.duration is not None:
        seconds = _seconds(args.duration)
        return dict.fromkeys(args.profiles, now + seconds)
    if args.until is not None:
        return {p: _until(config, p, args.until, now) for p in args.profiles}
    if required:
        raise UsageError("say how long: --for 45m or --until 10:45")
    return dict.fromkeys(args.profiles, UNTIL_RESUMED)


def _seconds(text: str) -> float:
    try:
        seconds = parse_span(text)
    except MissingUnitError:
        raise UsageError(f'--for needs a unit: 30m, 2h, 1d (not "{text.strip()}")') from None
    except ValueError:
        raise UsageError(f'--for "{text}" is not a duration like 45m, 2h or 1d') from None
    if seconds <= 0:
        raise UsageError("--for must be more than 0")
    return seconds


def _until(config: Config, profile: str, text: str, now: float) -> float:
    zone = _zone(config, profile)
    try:
        wanted = datetime.strptime(text.strip(), "%H:%M")
    except ValueError:
        raise UsageError(f'--until "{text}" is not a time of day like 10:45') from None
    today = datetime.fromtimestamp(now, zone)
    end = today.replace(hour=wanted.hour, minute=wanted.minute, second=0, microsecond=0)
    if end.timestamp() <= now:
        raise UsageError(
            f"--until {text}: it is already {today:%H:%M} for {profile} ({zone.key}); give a "
            "later time today, or --for"
        )
    return end.timestamp()


def _domain(text: str) -> str:
    domain = normalize_name(text)
    if not is_domain_name(domain):
        raise UsageError(f"{text!r} is not a domain name")
    return domain


def _zone(config: Config, profile: str) -> ZoneInfo:
    return zone_of(config.profile(profile).timezone, config.server.timezone)


def _error(console: Console, message: str) -> int:
    console.print(f"[red]{escape(message)}[/red]", highlight=False)
    return 1
