"""The query log's schema on PostgreSQL, and the names and bounds of its daily partitions.

Versioned like the SQLite file (`meta.schema_version`, MIGRATIONS applied in order, under an
advisory lock so two instances starting together never migrate twice). The tables keep the
SQLite log's columns, so a report reads both the same way, plus `instance` (`server.instance`):
many filterdns instances write one database. `ts` stays unix seconds (double precision) as in
SQLite; `queries` is partitioned by UTC day on it (`queries_pYYYYMMDD`), created ahead by the
writer and dropped whole by retention, which never has to delete row by row.
"""

from __future__ import annotations

import calendar
import re
import time
from typing import Final

PG_SCHEMA_VERSION = 1
DAY = 86400
# pg_advisory_xact_lock keys: one for migrations, one for creating and dropping partitions.
MIGRATION_LOCK = 0x46444E53_0001  # "FDNS" 1
PARTITION_LOCK = 0x46444E53_0002

QUERY_COLUMNS: Final = (
    "instance", "ts", "client", "client_name", "profile", "name", "qtype", "kind", "category",
    "rule", "reason", "source", "response",
)  # fmt: skip

SCHEMA_V1: Final = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS queries (
  id BIGINT GENERATED ALWAYS AS IDENTITY,
  instance TEXT NOT NULL,
  ts DOUBLE PRECISION NOT NULL,
  client TEXT NOT NULL,
  client_name TEXT,
  profile TEXT,
  name TEXT NOT NULL,
  qtype TEXT NOT NULL,
  kind TEXT NOT NULL,
  category TEXT,
  rule TEXT,
  reason TEXT NOT NULL DEFAULT '',
  source TEXT,
  response TEXT
) PARTITION BY RANGE (ts)""",
    # The report's questions: a profile's lookups, and lookups of a kind, over a time range.
    "CREATE INDEX IF NOT EXISTS queries_ts ON queries (ts)",
    "CREATE INDEX IF NOT EXISTS queries_profile_ts ON queries (profile, ts)",
    "CREATE INDEX IF NOT EXISTS queries_kind_ts ON queries (kind, ts)",
    "CREATE INDEX IF NOT EXISTS queries_instance_ts ON queries (instance, ts)",
    """CREATE TABLE IF NOT EXISTS drops (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  instance TEXT NOT NULL,
  ts DOUBLE PRECISION NOT NULL,
  count INTEGER NOT NULL,
  reason TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS drops_ts ON drops (ts)",
    """CREATE TABLE IF NOT EXISTS alerts (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  instance TEXT NOT NULL,
  ts DOUBLE PRECISION NOT NULL,
  rule TEXT NOT NULL,
  profile TEXT,
  categories TEXT NOT NULL,
  count INTEGER NOT NULL,
  "window" DOUBLE PRECISION NOT NULL,
  message TEXT NOT NULL,
  delivered INTEGER NOT NULL,
  error TEXT
)""",
    "CREATE INDEX IF NOT EXISTS alerts_ts ON alerts (ts)",
    """CREATE TABLE IF NOT EXISTS budget_usage (
  instance TEXT NOT NULL,
  profile TEXT NOT NULL,
  budget TEXT NOT NULL,
  day TEXT NOT NULL,
  minutes INTEGER NOT NULL,
  PRIMARY KEY (instance, profile, budget, day)
)""",
)

MIGRATIONS: Final = {1: SCHEMA_V1}

COPY_QUERIES: Final = f"COPY queries ({', '.join(QUERY_COLUMNS)}) FROM STDIN"
INSERT_DROP: Final = "INSERT INTO drops (instance, ts, count, reason) VALUES (%s, %s, %s, %s)"
INSERT_ALERT: Final = (
    'INSERT INTO alerts (instance, ts, rule, profile, categories, count, "window", message,'
    " delivered, error) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
UPSERT_USAGE: Final = (
    "INSERT INTO budget_usage (instance, profile, budget, day, minutes)"
    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (instance, profile, budget, day)"
    " DO UPDATE SET minutes = GREATEST(budget_usage.minutes, excluded.minutes)"
)
LIST_PARTITIONS: Final = (
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
    " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'queries'"
    " AND p.relnamespace = current_schema()::regnamespace"
)

_PARTITION = re.compile(r"queries_p(\d{8})")


def day_of(ts: float) -> int:
    """The UTC day holding unix time `ts`, as the unix time of its midnight."""
    return int(ts // DAY) * DAY


def partition_name(day: int) -> str:
    """The partition of the UTC day starting at `day`: queries_pYYYYMMDD."""
    return "queries_p" + time.strftime("%Y%m%d", time.gmtime(day))


def partition_day(name: str) -> int | None:
    """The day a partition name stands for (the inverse of partition_name); None for others."""
    match = _PARTITION.fullmatch(name)
    if match is None:
        return None
    try:
        parsed = time.strptime(match[1], "%Y%m%d")
    except ValueError:
        return None
    return calendar.timegm(parsed)


def create_partition(day: int) -> str:
    """The statement creating the partition of `day` (nothing when it exists)."""
    return (
        f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF queries"
        f" FOR VALUES FROM ({day}) TO ({day + DAY})"
    )


def ahead(now: float) -> list[int]:
    """The days whose partitions exist ahead of the rows: today and tomorrow (UTC)."""
    today = day_of(now)
    return [today, today + DAY]


def expired(names: list[str], cutoff: float) -> list[str]:
    """The partitions whose whole day ended before `cutoff` (unix time), oldest first."""
    days = sorted((day, name) for name in names if (day := partition_day(name)) is not None)
    return [name for day, name in days if day + DAY <= cutoff]
