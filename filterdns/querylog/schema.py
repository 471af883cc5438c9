"""The log database's schema: the statements of each version, applied in order by `dbfile`.

A new version appends its statements as `SCHEMA_V<n>` and an entry in MIGRATIONS; `dbfile`
applies the missing ones under one `BEGIN IMMEDIATE`, so an older database is brought up to date
by whichever process opens it for writing first.
"""

from __future__ import annotations

from typing import Final

SCHEMA_VERSION = 7

SCHEMA_V1: Final = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS queries (
  id INTEGER PRIMARY KEY,
  ts REAL NOT NULL,
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
)""",
    "CREATE INDEX IF NOT EXISTS queries_ts ON queries (ts)",
    "CREATE INDEX IF NOT EXISTS queries_profile_ts ON queries (profile, ts)",
    "CREATE INDEX IF NOT EXISTS queries_kind_ts ON queries (kind, ts)",
    """CREATE TABLE IF NOT EXISTS drops (
  id INTEGER PRIMARY KEY,
  ts REAL NOT NULL,
  count INTEGER NOT NULL,
  reason TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS drops_ts ON drops (ts)",
    """CREATE TABLE IF NOT EXISTS alerts (
  id INTEGER PRIMARY KEY,
  ts REAL NOT NULL,
  rule TEXT NOT NULL,
  profile TEXT,
  categories TEXT NOT NULL,
  count INTEGER NOT NULL,
  window REAL NOT NULL,
  message TEXT NOT NULL,
  delivered INTEGER NOT NULL,
  error TEXT
)""",
    "CREATE INDEX IF NOT EXISTS alerts_ts ON alerts (ts)",
)

# AUTOINCREMENT: a revoked grant's id is never given again, so `revoke 3` never ends another.
SCHEMA_V2: Final = (
    """CREATE TABLE IF NOT EXISTS grants (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  profile TEXT NOT NULL,
  domain TEXT,
  category TEXT,
  reason TEXT NOT NULL DEFAULT '',
  created_at REAL NOT NULL,
  expires_at REAL NOT NULL
)""",
)

# Pauses and overrides are grants of another kind: old rows stay valid as they are.
SCHEMA_V3: Final = (
    "ALTER TABLE grants ADD COLUMN kind TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE grants ADD COLUMN created_by TEXT NOT NULL DEFAULT ''",
)

# Time budgets: one row per profile, budget and day (YYYY-MM-DD in the profile's zone).
SCHEMA_V4: Final = (
    """CREATE TABLE IF NOT EXISTS budget_usage (
  profile TEXT NOT NULL,
  budget TEXT NOT NULL,
  day TEXT NOT NULL,
  minutes INTEGER NOT NULL,
  PRIMARY KEY (profile, budget, day)
)""",
    "ALTER TABLE grants ADD COLUMN minutes INTEGER NOT NULL DEFAULT 0",
)

# The web app: accounts (a memory-hard password hash only), API tokens and sessions (their SHA-256
# only: the clear value lives in the client), every change made by a person with who made it and
# through which door (cli, web, api), and a child's requests to unblock a name.
SCHEMA_V5: Final = (
    """CREATE TABLE IF NOT EXISTS web_accounts (
  name TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  profiles TEXT NOT NULL DEFAULT '',
  password TEXT NOT NULL,
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS web_tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  account TEXT NOT NULL,
  label TEXT NOT NULL DEFAULT '',
  digest TEXT NOT NULL UNIQUE,
  created_at REAL NOT NULL,
  last_used REAL
)""",
    """CREATE TABLE IF NOT EXISTS web_sessions (
  digest TEXT PRIMARY KEY,
  account TEXT NOT NULL,
  csrf TEXT NOT NULL,
  created_at REAL NOT NULL,
  expires_at REAL NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS changes (
  id INTEGER PRIMARY KEY,
  ts REAL NOT NULL,
  who TEXT NOT NULL,
  via TEXT NOT NULL,
  action TEXT NOT NULL,
  profile TEXT,
  detail TEXT NOT NULL DEFAULT ''
)""",
    "CREATE INDEX IF NOT EXISTS changes_ts ON changes (ts)",
    """CREATE TABLE IF NOT EXISTS access_requests (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts REAL NOT NULL,
  client TEXT NOT NULL,
  profile TEXT NOT NULL,
  name TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL DEFAULT 'open',
  decided_by TEXT,
  decided_at REAL,
  grant_id INTEGER
)""",
    "CREATE INDEX IF NOT EXISTS access_requests_state_ts ON access_requests (state, ts)",
)

# A request's instance (`server.instance` on a PostgreSQL database many instances share, where
# private addresses repeat from one site to the next; '' in the SQLite file of one).
SCHEMA_V6: Final = ("ALTER TABLE access_requests ADD COLUMN instance TEXT NOT NULL DEFAULT ''",)

# A row of `queries` stands for `hits` blocked (or allowed) lookups: the log folds the repeats of
# one lookup (same client, profile, name, type and outcome) within `log.fold_window` into the
# row of the first. Old rows stand for one lookup each, as they did.
SCHEMA_V7: Final = ("ALTER TABLE queries ADD COLUMN hits INTEGER NOT NULL DEFAULT 1",)

MIGRATIONS: Final = {
    1: SCHEMA_V1, 2: SCHEMA_V2, 3: SCHEMA_V3, 4: SCHEMA_V4, 5: SCHEMA_V5, 6: SCHEMA_V6,
    7: SCHEMA_V7,
}  # fmt: skip
