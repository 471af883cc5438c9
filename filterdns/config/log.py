"""`log:` where blocked lookups (and grants) are recorded, and for how long."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from filterdns.config.readers import Section, boolean_key, duration_key, file_key


@dataclass(frozen=True, slots=True)
class LogConfig:
    """`log:` where blocked lookups are recorded (SQLite) and for how long."""

    database: Path = Path("filterdns.db")  # relative to the state directory by default
    retention: float = 90 * 86400.0
    log_allowed: bool = False
    anonymize_clients: bool = False


SECTION = Section(
    "log",
    LogConfig,
    "Where blocked lookups are recorded (SQLite) and for how long",
    (
        file_key("database", "The SQLite database of blocked lookups; relative to this file's "
                 "directory. Default: filterdns.db in the state directory"),
        duration_key("retention", "Lookups older than this are deleted", positive=True),
        boolean_key("log_allowed", "Record allowed lookups too, not only blocked ones"),
        boolean_key("anonymize_clients", "Record lookups without the client's address"),
    ),
)  # fmt: skip
