"""Changing the rules of a running server: `filterdns reload`, and `check --against`'s dry run.

Both show the protection difference (`protection.difference`) between a file and another one or
the running configuration the server saved in its state directory (`runstate`), the changes that
weaken protection first. `reload` then validates the file and sends the server SIGHUP, an
explicit reload: the server applies even changes that weaken protection (the file watch holds
those back), and the CLI waits until the running configuration says it was applied.

`cli` owns the Console and the exit codes; the renderables are built here apart from printing.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import time
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.text import Text

from filterdns.config import Config, default_config, find_config, load_config
from filterdns.errors import ConfigError, ControlError
from filterdns.ops import runstate
from filterdns.policy.protection import Difference, difference

RUNNING = "running"
WAIT_POLL = 0.1  # seconds between two looks at the running configuration while waiting


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> list[argparse.ArgumentParser]:
    """Add `reload` to the command-line parser; returns it (for -c)."""
    reload = sub.add_parser(
        "reload",
        help="apply the configuration file now, including changes that weaken protection",
    )
    reload.add_argument("--json", action="store_true", help="machine-readable output")
    reload.add_argument(
        "--wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for the server to confirm (0: do not wait; default 30)",
    )
    return [reload]


def add_check_options(check: argparse.ArgumentParser) -> None:
    """`check --against [FILE|running]`."""
    check.add_argument(
        "--against",
        nargs="?",
        const=RUNNING,
        metavar="FILE",
        help="show what the file would change in protection compared with FILE, or with the "
        "running server's configuration (`running`, the default); nothing is applied",
    )


# What a file says, and what it would change


def warnings(config: Config) -> list[str]:
    """What a valid file leaves to the defaults that an admin should know about."""
    found = []
    if "profiles" not in config.given:
        found.append(
            f"no profiles: every device gets the built-in {config.default_profile} profile"
        )
    if not config.clients:
        found.append(f"no clients: every device gets the {config.default_profile} default")
    return found + _web_warnings(config)


def _web_warnings(config: Config) -> list[str]:
    """The web app over plain HTTP beyond this machine: passwords cross the network in clear."""
    listen = config.web.listen
    if listen is None or config.web.tls_cert is not None:
        return []
    if ipaddress.ip_address(listen.host).is_loopback:
        return []
    return [
        f"web.listen {listen} without tls_cert: passwords and sessions cross the network in "
        "clear (fine on a home Wi-Fi you trust; see docs/web.md for HTTPS)"
    ]


def against(config: Config, which: str) -> tuple[Config, str]:
    """The configuration to compare `config` with, and words for it: a file, or the running
    one (`running`). ConfigError when that file is invalid, ControlError when there is none."""
    if which != RUNNING:
        return load_config(which), which
    places = (runstate.state_dir(config), runstate.state_dir(default_config()))
    for directory in dict.fromkeys(places):
        running = runstate.read_running(directory)
        if running is not None:
            origin = running.source or "the embedded defaults"
            return running.config(), f"the running configuration ({origin}, {running.applied})"
    where = runstate.state_dir(config) / runstate.RUNNING_FILE
    raise ControlError(
        f"no running configuration: {where} does not exist (filterdns serve saves the "
        "configuration it applies there; is it running?)"
    )


def dry_run(config: Config, which: str, errors: Console) -> tuple[Difference, str] | None:
    """What `config` would change against `which` (a file or `running`) and words for that;
    None after saying on `errors` why they cannot be compared."""
    try:
        old, label = against(config, which)
    except ConfigError as exc:  # the file compared with; the one checked is valid
        _problems(errors, exc, "cannot compare")
        return None
    except ControlError as exc:
        errors.print(f"[red]cannot compare: {escape(str(exc))}[/red]")
        return None
    return difference(old, config), label


def difference_view(found: Difference, label: str) -> RenderableType:
    """The changes as lines, weakening ones first and marked; "no change" when there is none."""
    lines: list[RenderableType] = [Text(f"changes to protection against {label}:", style="bold")]
    if not found.changes:
        lines.append(Text("  no change to protection"))
    for change in found.ordered():
        mark = Text("  WEAKENS  ", style="bold red") if change.weakens else Text("           ")
        lines.append(Text.assemble(mark, change.text))
    if found.weakens:
        who = ", ".join(found.who())
        lines.append(Text(f"weakens protection for {who}", style="red"))
    return Group(*lines)


# filterdns reload


def reload(args: argparse.Namespace, console: Console, errors: Console) -> int:
    """Validate the file, show what it changes, and tell the running server to apply it."""
    path = find_config(args.config)
    if path is None:
        errors.print("[red]no configuration file: nothing to reload[/red]")
        return 1
    try:
        config = load_config(path)
    except ConfigError as exc:
        _problems(errors, exc, "the running server keeps its rules")
        return 1
    directory = runstate.state_dir(config)
    try:
        running = runstate.read_running(directory)
    except ControlError as exc:
        errors.print(f"[red]{escape(str(exc))}[/red]")
        return 1
    if running is not None and running.source is None:
        errors.print(
            "[red]the server runs on the embedded defaults and reads no file; start it with "
            f"-c {escape(str(path))} to use that file[/red]"
        )
        return 1
    if running is not None and running.source and not _same(running.source, path):
        errors.print(
            f"[red]the server runs {escape(running.source)}; a reload reads that file, not "
            f"{escape(str(path))}[/red]"
        )
        return 1
    found = _compare(errors, running, config)
    if found is not None and not args.json:
        console.print(difference_view(found, "the running configuration"))
    try:
        pid = runstate.signal_reload(directory)
    except ControlError as exc:
        errors.print(f"[red]{escape(str(exc))}[/red]")
        return 1
    if not args.json:
        console.print(f"asked filterdns (process {pid}) to reload {escape(str(path))}")
    applied = _wait(directory, running, args.wait)
    if args.json:
        data = {
            "config": str(path),
            "pid": pid,
            "applied": applied,
            "difference": found.to_json() if found is not None else None,
        }
        print(json.dumps(data))
    elif applied:
        console.print("[green]applied[/green]")
    elif applied is False:
        errors.print(
            f"[red]not confirmed within {args.wait:g} s: see the server's log "
            "(journalctl -u filterdns)[/red]"
        )
    return 1 if applied is False else 0


def _compare(
    errors: Console, running: runstate.Running | None, config: Config
) -> Difference | None:
    """The difference against the running configuration; None (said why) when unknown."""
    if running is None:
        errors.print("[yellow]no running configuration saved: the difference is unknown[/yellow]")
        return None
    try:
        return difference(running.config(), config)
    except ConfigError as exc:
        _problems(errors, exc, "the difference is unknown")
        return None


def _wait(directory: Path, before: runstate.Running | None, seconds: float) -> bool | None:
    """True once the server saved a newer running configuration, False when it has not within
    `seconds`, None when not asked to wait."""
    if seconds <= 0:
        return None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = runstate.read_running(directory)
        if now is not None and (before is None or now.applied != before.applied):
            return True
        time.sleep(WAIT_POLL)
    return False


def _same(source: str, path: Path) -> bool:
    return Path(source).resolve() == path.resolve()


def _problems(console: Console, exc: ConfigError, consequence: str) -> None:
    source = exc.source or "configuration"
    console.print(f"[red]{escape(source)}: {len(exc.problems)} problem(s); {consequence}[/red]")
    for problem in exc.problems:
        console.print(f"  - {problem}", markup=False, highlight=False)
