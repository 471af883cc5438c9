"""The `report` and `tail` commands: their options, the Console, and the exit codes.

Both only read the log database the server writes (`log.database`). `report` shows the blocked
lookups of a period (`--since 24h|7d|30d` or any duration, ending now), optionally of one
profile (`--profile`) or one device (`--client`: the address as logged, or the client's name
from `clients:`) or, on a PostgreSQL log many instances write, of one instance (`--instance`,
default every one): rich tables, or `--json` (docs/report-json.md), or `--html FILE`, one
self-contained page. Headings and the page are in the language of `--lang` (default
`report.lang`), any language with a catalogue (querylog.translations); `report.footer` (e.g.
where to report harmful content) ends them. The data comes from querylog.report.collect, the
tables from querylog.report.terminal and the page from querylog.report.page.

`tail` follows the database: every 0.5 s it reads the blocked lookups logged since the last
read (querylog.tail, which follows a database the server moved aside to the fresh one) and
shows them: a live table of the last 20 on a terminal, plain lines `time profile client name
category reason` otherwise, one JSON object per line with `--json`, until interrupted. On a
PostgreSQL log (querylog.pgtail) it shows every instance's rows with their instance, or one
instance's (`--instance`); a database that goes away is said once on stderr and tried again
with back-off, and the rows go on from where they stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape

from filterdns.config import Config
from filterdns.config.duration import parse_duration
from filterdns.config.server import parse_instance
from filterdns.errors import FilterDnsError
from filterdns.querylog import tail as tailing
from filterdns.querylog.report import page, terminal
from filterdns.querylog.report.collect import NOT_SHARED, read_report, report_zone
from filterdns.querylog.report.data import Report
from filterdns.querylog.translations import languages, texts

if TYPE_CHECKING:
    from filterdns.querylog.pgtail import PgTailReader

    Reader = tailing.TailReader | PgTailReader

TAIL_ROWS = 20  # rows in the live view
POLL_INTERVAL = 0.5  # seconds between two reads of the database


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> list[argparse.ArgumentParser]:
    """Add `report` and `tail` to the command-line parser; returns them (for -c)."""
    report_parser = sub.add_parser("report", help="blocked lookups of a period, for parents")
    report_parser.add_argument(
        "--since", default="7d", help="the period ending now: 24h, 7d, 30d or any duration"
    )
    report_parser.add_argument("--profile", help="only this profile")
    report_parser.add_argument("--client", help="only this device: its address or client name")
    report_parser.add_argument(
        "--instance", help="only this instance's lookups (a PostgreSQL log; default: all)"
    )
    report_parser.add_argument("--json", action="store_true", help="machine-readable output")
    report_parser.add_argument("--html", metavar="FILE", help="write a self-contained HTML page")
    report_parser.add_argument(
        "--lang", choices=languages(), help="language of headings and page (default: report.lang)"
    )
    tail_parser = sub.add_parser("tail", help="blocked lookups as they happen")
    tail_parser.add_argument("--profile", help="only this profile")
    tail_parser.add_argument(
        "--instance", help="only this instance's lookups (a PostgreSQL log; default: all)"
    )
    tail_parser.add_argument("--json", action="store_true", help="one JSON object per line")
    return [report_parser, tail_parser]


def _setting(config: Config, key: str, default: str) -> str:
    value = getattr(getattr(config, "report", None), key, default)
    return value if isinstance(value, str) else default


def _error(console: Console, message: str) -> None:
    console.print(f"[red]{escape(message)}[/red]")


def report(config: Config, args: argparse.Namespace, console: Console) -> int:
    """Print (or write as JSON or HTML) the report of the period `--since` ending now."""
    lang = getattr(args, "lang", None) or _setting(config, "lang", "en")
    words = texts(lang)
    try:
        seconds = parse_duration(getattr(args, "since", None) or "7d")
    except ValueError as exc:
        _error(console, words["bad_since"].format(error=exc))
        return 2
    if not _instance_ok(args, console):
        return 2
    result = _read(config, args, console, seconds, words["no_database"])
    if result is None:
        return 1
    footer = _setting(config, "footer", "")
    html_path = getattr(args, "html", None)
    if html_path:
        Path(html_path).write_text(page.render(result, lang, footer), encoding="utf-8")
    if getattr(args, "json", False):
        text = json.dumps(result.to_json(), indent=2)
        console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)
    elif html_path:
        console.print(escape(words["wrote"].format(path=html_path)))
    else:
        console.print(terminal.render(result, lang, footer))
    return 0


def _instance_ok(args: argparse.Namespace, console: Console) -> bool:
    """Whether `--instance`, when given, is an instance name (else said why)."""
    instance = getattr(args, "instance", None)
    if instance is not None:
        try:
            parse_instance(instance)
        except ValueError as exc:
            _error(console, f"--instance: {exc}")
            return False
    return True


def _read(
    config: Config, args: argparse.Namespace, console: Console, seconds: float, missing: str
) -> Report | None:
    """The report of the last `seconds`; None when the database cannot be read (said why)."""
    until = time.time()
    path = Path(config.log.database)
    try:
        return read_report(
            path,
            since=until - seconds,
            until=until,
            profile=getattr(args, "profile", None),
            client=getattr(args, "client", None),
            config=config,
            instance=getattr(args, "instance", None),
        )
    except FileNotFoundError:
        _error(console, missing.format(path=path))
    except FilterDnsError as exc:
        _error(console, str(exc))
    except sqlite3.Error as exc:
        _error(console, f"{path}: {exc}")
    return None


def tail(
    config: Config,
    args: argparse.Namespace,
    console: Console,
    *,
    stop: threading.Event | None = None,
    max_rows: int | None = None,
    started: threading.Event | None = None,
    interval: float = POLL_INTERVAL,
) -> int:
    """Show blocked lookups as they are logged, until interrupted (or `stop` is set, or
    `max_rows` rows were shown). `started` is set once the rows already logged are skipped."""
    if not _instance_ok(args, console):
        return 2
    path = Path(config.log.database)
    try:
        with contextlib.closing(_tail_reader(config, args)) as reader:
            if started is not None:
                started.set()
            _follow(
                reader,
                console,
                zone=report_zone(config),
                names=config.display_name,
                as_json=bool(getattr(args, "json", False)),
                stop=stop or threading.Event(),
                max_rows=max_rows,
                interval=interval,
            )
    except FileNotFoundError:
        _error(console, texts("en")["no_database"].format(path=path))
        return 1
    except FilterDnsError as exc:
        _error(console, str(exc))
        return 1
    except sqlite3.Error as exc:
        _error(console, f"{path}: {exc}")
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def _tail_reader(config: Config, args: argparse.Namespace) -> Reader:
    """The reader of `log.database`: the SQLite file, or the PostgreSQL log of every instance
    (or of `--instance`); FilterDnsError for an instance filter on SQLite."""
    profile, instance = getattr(args, "profile", None), getattr(args, "instance", None)
    if config.log.url is None:
        if instance is not None:
            raise FilterDnsError(NOT_SHARED)
        return tailing.TailReader(Path(config.log.database), profile)
    from filterdns.querylog import pgtail  # noqa: PLC0415 (psycopg only for PostgreSQL)

    return pgtail.PgTailReader(config.log.url, profile, instance, notice=_warn)


def _warn(message: str) -> None:
    """A line about the database on stderr, apart from the rows (JSON lines stay parseable)."""
    Console(stderr=True).print(
        message, style="yellow", markup=False, highlight=False, emoji=False, soft_wrap=True
    )


def _follow(
    reader: Reader,
    console: Console,
    *,
    zone: ZoneInfo,
    names: Callable[[str], str],
    as_json: bool,
    stop: threading.Event,
    max_rows: int | None,
    interval: float,
) -> None:
    """Show the rows `reader` finds until `stop` is set or `max_rows` were shown."""
    recent: deque[tailing.TailRow] = deque(maxlen=TAIL_ROWS)
    shown = 0
    with _live(console, console.is_terminal and not as_json) as live:
        if live is not None:
            live.update(tailing.table(recent, zone, names, reader.shared))
        for found in reader.follow(stop, interval):
            rows = found if max_rows is None else found[: max_rows - shown]
            shown += len(rows)
            if live is not None:
                recent.extend(rows)
                live.update(tailing.table(recent, zone, names, reader.shared))
            else:
                for row in rows:
                    line = tailing.line(row, zone, as_json, names)
                    console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)
            if max_rows is not None and shown >= max_rows:
                return


def _live(console: Console, enabled: bool) -> contextlib.AbstractContextManager[Live | None]:
    if not enabled:
        return contextlib.nullcontext()
    return Live(Group(), console=console, refresh_per_second=4, transient=False)
