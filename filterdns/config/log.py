"""`log:` where blocked lookups (and grants) are recorded, and for how long.

`log.database` holds a file path (SQLite, the default) or a `postgresql://user@host[:port]/db`
URL: the query log, its alerts and the budget minutes then go to that PostgreSQL database, and
so do grants, pauses, overrides, web accounts, requests and changes, shared by every instance
writing it (querylog/shareddb.py). A password in the URL is refused: the file is copied into the
state directory as it is (running-config.yaml), so the password belongs in ~/.pgpass (or the file
PGPASSFILE names), or the server authenticates the user by peer authentication.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from filterdns.config.fragments import duration, string
from filterdns.config.readers import (
    ConfigReader,
    Key,
    Section,
    boolean_key,
    duration_key,
    duration_text,
)
from filterdns.config.walker import Node, show

URL_SCHEMES = ("postgresql", "postgres")
PASSWORD_HINT = (
    "a password in the configuration would be copied into the state directory "
    "(running-config.yaml); keep it in ~/.pgpass (or the file PGPASSFILE names), or let the "
    "server authenticate the user (peer authentication)"
)


@dataclass(frozen=True, slots=True)
class LogConfig:
    """`log:` where blocked lookups are recorded (SQLite or PostgreSQL) and for how long."""

    database: Path = Path("filterdns.db")  # relative to the state directory by default
    retention: float = 90 * 86400.0
    log_allowed: bool = False
    anonymize_clients: bool = False
    # Repeats of one lookup within this many seconds are one row with a count (0: a row each).
    fold_window: float = 1.0
    # Set when `database` holds a postgresql:// URL: the query log and the shared state are
    # written there; `database` keeps its default path (the state directory is its folder).
    url: str | None = None


def is_url(text: str) -> bool:
    """Whether `log.database` holds a URL rather than a path."""
    return "://" in text


def parse_url(text: str) -> str:
    """`text` as a PostgreSQL URL filterdns accepts; ValueError saying what is wrong."""
    text = text.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{show(text)} is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in URL_SCHEMES:
        raise ValueError(
            f"{show(text)}: log.database holds a file path or a postgresql://user@host/db URL"
        )
    query = dict(parse_qsl(parts.query))
    if parts.password is not None or "password" in query:
        raise ValueError(f"{show(_hide(text))} holds a password: {PASSWORD_HINT}")
    if not parts.path.strip("/"):
        raise ValueError(f"{show(text)} names no database: postgresql://user@host[:port]/db")
    if port == 0:
        raise ValueError(f"{show(text)}: port 0 is no PostgreSQL port")
    if not parts.hostname and "host" not in query:
        raise ValueError(f"{show(text)} names no host: postgresql://user@host[:port]/db")
    return text


def _hide(text: str) -> str:
    """The URL as messages show it: no password, no query string."""
    parts = urlsplit(text)
    user = f"{parts.username}:***@" if parts.username else ""
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{user}{host}{parts.path}"


def _database(r: ConfigReader, node: Node, path: str) -> Path | None:
    """A file path; a URL is checked here and kept by `_check` (the path keeps its default)."""
    text = r.text(node, path, "a file path")
    if text is None:
        return None
    if not is_url(text):
        return r.file(node, path)
    try:
        parse_url(text)
    except ValueError as exc:
        r.problem(node, path, str(exc))
    return None


def _fold_window(r: ConfigReader, node: Node, path: str) -> float | None:
    """0, or a duration a minute holds a whole number of (so a row's hits share its minute)."""
    seconds = r.duration(node, path)
    if seconds is None or seconds == 0:
        return seconds
    parts = 60 / seconds
    if seconds > 60 or abs(parts - round(parts)) > 1e-9:
        r.problem(node, path, f"{show(node.value)} does not divide a minute: 0 (off) or a "
                  "duration a minute holds a whole number of, e.g. 500ms, 1s, 5s, 1m")  # fmt: skip
        return None
    return seconds


def _check(r: ConfigReader, found: Mapping[str, Node], value: LogConfig) -> LogConfig:
    """`url` from `database` when it holds a good URL; a path there turns the URL off."""
    node = found.get("database")
    if node is None or not isinstance(node.value, str):
        return value
    if not is_url(node.value):
        return replace(value, url=None)
    try:
        return replace(value, url=parse_url(node.value))
    except ValueError:  # the problem was reported by _database
        return value


DERIVED = ("url",)  # fields no key of their own sets


class LogSection(Section[LogConfig]):
    """The section, whose `url` field is read from the `database` key."""

    __slots__ = ()

    def __post_init__(self) -> None:
        own = tuple(f.name for f in fields(self.kind) if f.name not in DERIVED)
        if self.names != own:
            raise TypeError(f"{self.name}: keys {self.names} are not the fields {own}")


SECTION = LogSection(
    "log",
    LogConfig,
    "Where blocked lookups are recorded (SQLite or PostgreSQL) and for how long",
    (
        Key("database", _database, string(
            "The SQLite database of blocked lookups (and grants), relative to this file's "
            "directory, or a postgresql://user@host[:port]/db URL (no password: ~/.pgpass) for "
            "the query log and grants shared by many instances. Default: filterdns.db in the "
            "state directory",
            minLength=1,
        ), state_relative=True),
        duration_key("retention", "Lookups older than this are deleted", positive=True),
        boolean_key("log_allowed", "Record allowed lookups too, not only blocked ones"),
        boolean_key("anonymize_clients", "Record lookups without the client's address"),
        Key("fold_window", _fold_window, duration(
            "Repeats of one lookup (same client, profile, name, type and outcome) within this "
            "window are recorded as one row with a count (hits); 0 records a row per lookup. "
            "A minute must hold a whole number of windows (500ms, 1s, 5s, 1m)"
        ), show=duration_text),
    ),
    _check,
)  # fmt: skip
