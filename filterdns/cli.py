"""The `filterdns` command line: serve, check. Owns the rich Console and the exit codes."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from filterdns import __version__
from filterdns.app import App
from filterdns.config import Config, ListenAddress, default_config, find_config, load_config
from filterdns.errors import ConfigError, FilterDnsError
from filterdns.server import addresses_text

log = logging.getLogger("filterdns")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 2
    handler = {"serve": _serve, "check": _check}[args.command]
    code: int = handler(args)
    return code


def _parser() -> argparse.ArgumentParser:
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
    check = sub.add_parser("check", help="validate the configuration")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    for command in (serve, check):
        # SUPPRESS: a -c given before the command is not overwritten by the command's default
        add_config(command, argparse.SUPPRESS)
    return parser


def _load(args: argparse.Namespace) -> Config:
    path = find_config(args.config)
    return default_config() if path is None else load_config(path)


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = _load(args)
    except ConfigError as exc:
        _print_problems(Console(stderr=True, soft_wrap=True), exc)
        return 1

    def ready(bound: Sequence[ListenAddress]) -> None:
        origin = config.source or "embedded defaults"
        servers = ", ".join(str(s) for s in config.upstreams.servers)
        log.info(
            "filterdns %s listening on %s (UDP and TCP); config: %s; upstreams: %s",
            __version__,
            addresses_text(bound),
            origin,
            servers,
        )

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(App(config).run(ready))
    except FilterDnsError as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when installed (several times faster per datagram), else asyncio's."""
    try:
        import uvloop  # noqa: PLC0415 - optional at run time
    except ImportError:  # pragma: no cover - a dependency on Linux; asyncio works too
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _check(args: argparse.Namespace) -> int:
    console = Console(soft_wrap=True)
    try:
        config = _load(args)
    except ConfigError as exc:
        if args.json:
            problems = [
                {"path": p.path, "line": p.line, "message": p.message} for p in exc.problems
            ]
            print(json.dumps({"valid": False, "source": exc.source, "problems": problems}))
        else:
            _print_problems(Console(stderr=True, soft_wrap=True), exc)
        return 1
    if args.json:
        print(json.dumps({"valid": True, **_summary(config)}, default=str))
    else:
        console.print(_summary_table(config))
        console.print("[green]configuration is valid[/green]")
    return 0


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
    }


def _summary_table(config: Config) -> Table:
    table = Table(title="filterdns configuration", show_header=False)
    table.add_column("setting", style="bold")
    table.add_column("value")
    for key, value in _summary(config).items():
        if isinstance(value, list):
            text = ", ".join(value)
        elif isinstance(value, dict):
            text = "; ".join(f"{k} -> {', '.join(v)}" for k, v in value.items()) or "-"
        else:
            text = str(value)
        table.add_row(key.replace("_", " "), text)
    return table
