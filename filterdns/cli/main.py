"""The `filterdns` command line: serve, check, reload. Owns the rich Console and the exit codes.

Every command runs with umask 0077: what it creates (the database, list copies, an HTML report)
holds children's browsing history. Commands that write the state (`grant`, `revoke`, `grants`,
`pause`, `resume`, `override`, `budget`, `status`, `explain`, `lists`) run as the state
directory's owner when root starts them (privileges.act_as_owner), so the server can still read
what they write.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from filterdns import __version__, compiled
from filterdns.app import App
from filterdns.config import Config, ListenAddress, default_config, find_config, load_config
from filterdns.dns.listeners import addresses_text
from filterdns.errors import ConfigError, FilterDnsError
from filterdns.ops import privileges

if TYPE_CHECKING:  # rich and the other commands' modules are imported by the commands that use
    # them: `serve` runs without them (about 4 MB of the server's memory)
    from rich.console import Console
    from rich.table import Table

log = logging.getLogger("filterdns")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    words = sys.argv[1:] if argv is None else list(argv)
    parser = _parser(every_command=_asked(words) != "serve")
    args = parser.parse_args(words)
    if args.command is None:
        parser.print_help()
        return 2
    handler = _serve if args.command == "serve" else _commands()[args.command]
    previous = os.umask(0o077)
    try:
        code: int = handler(args)
    finally:
        os.umask(previous)
    return code


def _asked(words: Sequence[str]) -> str | None:
    """The command `words` name (the first word neither an option nor -c's value); None when
    help or the version is asked before it."""
    rest = iter(words)
    for word in rest:
        if word in ("-c", "--config"):
            next(rest, None)
        elif word in ("-h", "--help", "--version"):
            return None
        elif not word.startswith("-"):
            return word
    return None


def _commands() -> dict[str, Callable[[argparse.Namespace], int]]:
    """Every command but `serve`, their modules imported now (`serve` never loads them)."""
    from filterdns.cli import admin, budget, pause, report, status  # noqa: PLC0415
    from filterdns.cli import web as web_cli  # noqa: PLC0415

    return {
        "check": _check,
        "reload": _reload,
        "lists": _lists,
        "explain": _admin(admin.explain, as_owner=True),
        "grant": _admin(admin.grant, as_owner=True),
        "grants": _admin(admin.list_grants, as_owner=True),
        "revoke": _admin(admin.revoke, as_owner=True),
        "pause": _admin(pause.pause, as_owner=True),
        "resume": _admin(pause.resume, as_owner=True),
        "override": _admin(pause.override, as_owner=True),
        "budget": _admin(budget.budget, as_owner=True),
        "status": _admin(status.status, as_owner=True),
        "web": _admin(web_cli.web, as_owner=True),
        # Read-only: root reads the database as it is (SQLite gives any -shm file it creates
        # the database's owner), and may write --html where it likes.
        "report": _admin(report.report),
        "tail": _admin(report.tail),
    }


def _console(*, stderr: bool = False) -> Console:
    from rich.console import Console  # noqa: PLC0415 - see the import at the top

    return Console(stderr=stderr, soft_wrap=True)


def _escape(text: str) -> str:
    from rich.markup import escape  # noqa: PLC0415 - see the import at the top

    return escape(text)


def _parser(*, every_command: bool = True) -> argparse.ArgumentParser:
    """The command line's parser; with `every_command` False only `serve` is known, so the
    other commands' modules are not imported."""

    def add_config(parser: argparse.ArgumentParser, default: object) -> None:
        parser.add_argument(
            "-c",
            "--config",
            default=default,
            help="configuration file (default: /etc/filterdns/config.yaml if it exists, "
            "else ./config.yaml, else the embedded defaults)",
        )

    parser = argparse.ArgumentParser(prog="filterdns", description="DNS parental filtering proxy")
    add_config(parser, None)
    parser.add_argument("--version", action="version", version=f"filterdns {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the proxy")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    serve.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="text: one greppable line per event; json: one JSON object per line",
    )
    if every_command:
        _add_commands(sub, add_config)
    add_config(serve, argparse.SUPPRESS)
    return parser


def _add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    add_config: Callable[[argparse.ArgumentParser, object], None],
) -> None:
    """Every command but `serve` on `sub`."""
    from filterdns.cli import admin, budget, control, pause, report, status  # noqa: PLC0415
    from filterdns.cli import web as web_cli  # noqa: PLC0415

    check = sub.add_parser("check", help="validate the configuration")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    control.add_check_options(check)
    control_commands = control.add_commands(sub)
    lists = sub.add_parser("lists", help="category lists: statistics and refresh")
    lists_sub = lists.add_subparsers(dest="lists_command", required=True)
    stats = lists_sub.add_parser(
        "stats", help="per source and category: entries, skipped lines by reason, memory"
    )
    update = lists_sub.add_parser(
        "update", help="download remote sources now, rebuild the index, show what changed"
    )
    policy_commands = [
        *admin.add_commands(sub),
        *pause.add_commands(sub),
        *budget.add_commands(sub),
        *status.add_commands(sub),
    ]
    report_commands = report.add_commands(sub)
    web_commands = web_cli.add_commands(sub)
    commands = (check, lists, stats, update, *control_commands)
    for command in (*commands, *policy_commands, *report_commands, *web_commands):
        # SUPPRESS: a -c given before the command is not overwritten by the command's default
        add_config(command, argparse.SUPPRESS)
    for command in (stats, update, *policy_commands):
        command.add_argument("--json", action="store_true", help="machine-readable output")


def _admin(
    command: Callable[[Config, argparse.Namespace, Console], int], *, as_owner: bool = False
) -> Callable[[argparse.Namespace], int]:
    """A policy command with the configuration loaded (problems listed, exit 1), run as the
    state directory's owner when `as_owner` and root runs it."""

    def run(args: argparse.Namespace) -> int:
        try:
            config = _load(args)
        except ConfigError as exc:
            _print_problems(_console(stderr=True), exc)
            return 1
        if as_owner and not _act_as_owner(config):
            return 1
        return command(config, args, _console())

    return run


def _act_as_owner(config: Config) -> bool:
    """Become the state directory's owner when root; False (said why) when that fails."""
    try:
        privileges.act_as_owner(config.log.database.parent, config.server.user)
    except FilterDnsError as exc:
        _console(stderr=True).print(f"[red]{_escape(str(exc))}[/red]")
        return False
    return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601 UTC), level, logger, message, exception."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        data: dict[str, object] = {
            "ts": stamp.replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def _load(args: argparse.Namespace) -> Config:
    path = find_config(args.config)
    return default_config() if path is None else load_config(path)


def _serve(args: argparse.Namespace) -> int:
    handler = logging.StreamHandler(sys.stderr)
    if args.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler])
    try:
        config = _load(args)
    except ConfigError as exc:
        _print_problems(_console(stderr=True), exc)
        return 1

    def ready(bound: Sequence[ListenAddress]) -> None:
        origin = config.source or "embedded defaults"
        servers = ", ".join(str(s) for s in config.upstreams.servers)
        log.info(
            "filterdns %s listening on %s (UDP and TCP); config: %s; upstreams: %s; %s",
            __version__,
            addresses_text(bound),
            origin,
            servers,
            compiled.state(),
        )
        if config.source is None:  # a first try: say how to ask it, on the port it really has
            log.info("try it: %s", dig_hint(bound))

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(App(config).run(ready))
    except FilterDnsError as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def dig_hint(bound: Sequence[ListenAddress]) -> str:
    """The `dig` command that asks the proxy where it listens: port 53 needs no -p."""
    first = next((a for a in bound if ":" not in a.host), bound[0])
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(first.host, first.host)
    port = "" if first.port == 53 else f" -p {first.port}"
    return f"dig @{host}{port} example.com"


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when installed (several times faster per datagram), else asyncio's."""
    try:
        import uvloop  # noqa: PLC0415 - optional at run time
    except ImportError:  # pragma: no cover - a dependency on Linux; asyncio works too
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _check(args: argparse.Namespace) -> int:
    from filterdns.cli import control  # noqa: PLC0415 - see _commands

    console, errors = _console(), _console(stderr=True)
    try:
        config = _load(args)
    except ConfigError as exc:
        if args.json:
            problems = [
                {"path": p.path, "line": p.line, "message": p.message} for p in exc.problems
            ]
            data = {"valid": False, "source": exc.source, "problems": problems, "difference": None}
            print(json.dumps(data))
        else:
            _print_problems(errors, exc)
        return 1
    found = None
    if args.against is not None:
        found = control.dry_run(config, args.against, errors)
        if found is None:
            return 1
    notes = control.warnings(config)
    if args.json:
        dry_run = found[0].to_json() if found is not None else None
        valid = {"valid": True, "problems": [], "warnings": notes, "difference": dry_run}
        print(json.dumps({**valid, **_summary(config)}, default=str))
        return 0
    if found is None:
        console.print(_summary_table(config))
    else:
        console.print(control.difference_view(*found))
        console.print("dry run: nothing was applied")
    for note in notes:
        console.print(f"[yellow]warning: {_escape(note)}[/yellow]")
    console.print("[green]configuration is valid[/green]")
    return 0


def _reload(args: argparse.Namespace) -> int:
    from filterdns.cli import control  # noqa: PLC0415 - see _commands

    console, errors = _console(), _console(stderr=True)
    return control.reload(args, console, errors)


def _print_problems(console: Console, exc: ConfigError) -> None:
    source = exc.source or "configuration"
    console.print(f"[red]{source}: {len(exc.problems)} problem(s)[/red]")
    for problem in exc.problems:
        console.print(f"  - {problem}", markup=False, highlight=False)


def _summary(config: Config) -> dict[str, object]:
    return {
        "source": config.source or "embedded defaults",
        "listen": [str(a) for a in config.server.listen],
        "allow_clients": [str(n) for n in config.server.allow_clients],
        "upstreams": [str(s) for s in config.upstreams.servers],
        "strategy": config.upstreams.strategy,
        "timeout": config.upstreams.timeout,
        "conditional": {
            suffix: [str(s) for s in servers] for suffix, servers in config.upstreams.conditional
        },
        "cache_max_entries": config.cache.max_entries,
        "serve_stale": config.cache.serve_stale,
        "prefetch": config.cache.prefetch,
        "database": str(Path(config.log.database)),
        "profiles": {p.name: _profile_summary(config, p.name) for p in config.profiles},
        "default_profile": config.default_profile,
        "clients": len(config.clients),
        "local_records": len(config.local_records),
    }


def _profile_summary(config: Config, name: str) -> str:
    profile = config.profile(name)
    band = config.band(profile.age_band)
    categories = sorted({*band.categories, *profile.categories})
    rules = [r.name for r in config.schedules_of(profile)]
    parts = [f"band {band.name}", f"blocks {', '.join(categories)}"]
    parts.append(f"schedules: {', '.join(rules)}" if rules else "no schedules")
    if profile.allow or profile.block:
        parts.append(f"{len(profile.allow)} allowed, {len(profile.block)} blocked domains")
    return "; ".join(parts)


def _summary_table(config: Config) -> Table:
    from rich.table import Table  # noqa: PLC0415 - see the import at the top

    table = Table(title="filterdns configuration", show_header=False)
    table.add_column("setting", style="bold")
    table.add_column("value")
    for key, value in _summary(config).items():
        if isinstance(value, list):
            text = ", ".join(value)
        elif isinstance(value, dict):
            text = (
                "\n".join(
                    f"{k} -> {v if isinstance(v, str) else ', '.join(v)}" for k, v in value.items()
                )
                or "-"
            )
        else:
            text = str(value)
        table.add_row(key.replace("_", " "), text)
    return table


def _lists(args: argparse.Namespace) -> int:
    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
    try:
        config = _load(args)
    except ConfigError as exc:
        _print_problems(_console(stderr=True), exc)
        return 1
    if not _act_as_owner(config):
        return 1
    from filterdns.cli import lists as list_commands  # noqa: PLC0415 - see _commands

    return list_commands.run(config, args)
