"""Which device is asking, and what was blocked for it: the pages a child's device opens without
a login (/ask, /me, the block page) and the report a parent prepares.

A device is known by the address its request comes from (no proxy stands between the phones and
the box): the `clients:` rules give its profile, exactly as they do for its DNS lookups
(`ClientDirectory.match`). A device that no rule names is still a device: it is on the default
profile, its requests are filed under that profile and named by its address, and, like every
device, it sees only its own lookups, never another device's. The query log keeps the address
(with `log.anonymize_clients`, its keyed hash): `Device.key` is what the log keeps, so a device's
lookups and its requests are found by the same key.

The reads are synchronous (the pages run them in a worker thread) and a missing or unreadable
log reads as no lookups: a child's page never fails for the log's sake.
"""

from __future__ import annotations

import asyncio
import ipaddress
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from filterdns.config import Config, is_domain_name
from filterdns.dns.names import normalize_name
from filterdns.errors import FilterDnsError
from filterdns.policy.values import BLOCKING_ACTIONS
from filterdns.querylog import clientkey
from filterdns.querylog.report.collect import opened_log
from filterdns.web.auth import client_address
from filterdns.web.keys import BACKEND

DAY = 86400.0
SHOWN = 30  # blocked names listed on a device's request page


@dataclass(frozen=True, slots=True)
class Device:
    """The device a request comes from."""

    address: str
    key: str  # the client as the query log and the requests keep it
    profile: str
    name: str | None  # the name of its `clients:` rule (None: no rule names it)

    @property
    def shown(self) -> str:
        """What the adults are told: the rule's name, else the address."""
        return self.name or self.address


@dataclass(frozen=True, slots=True)
class Blocked:
    """One name blocked for a device: its latest lookup."""

    name: str
    ts: float
    category: str | None
    count: int


def plain_address(address: str) -> str:
    """An IPv4 address as DNS saw it: "::ffff:192.168.1.5" (a dual-stack listener) is
    "192.168.1.5"."""
    try:
        mapped = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(mapped, ipaddress.IPv6Address) and mapped.ipv4_mapped is not None:
        return str(mapped.ipv4_mapped)
    return address


def log_key(config: Config, address: str) -> str:
    """The client column of the query log for `address` (its keyed hash when anonymised)."""
    if not config.log.anonymize_clients:
        return address
    return clientkey.anonymize(clientkey.load_key(Path(config.log.database).parent), address)


async def device_of(request: web.Request) -> Device:
    """The device asking, by its address (the key of an anonymised log is read in a thread)."""
    backend = request.app[BACKEND]
    address = plain_address(client_address(request))
    match = backend.directory.match(address)
    key = address
    if backend.config.log.anonymize_clients:
        key = await asyncio.to_thread(log_key, backend.config, address)
    return Device(address, key, match.profile, match.name)


def blocked_for(config: Config, key: str, since: float, limit: int = SHOWN) -> list[Blocked]:
    """The names blocked for the device `key` since `since`, the latest first (on a shared
    PostgreSQL log, this instance's rows only: addresses repeat from one school to the next)."""
    here, more = _this_instance(config)
    rows = _read(
        config,
        "SELECT name, max(ts), max(category), sum(hits) FROM queries"
        f" WHERE client = ? AND kind = 'blocked' AND ts >= ?{here} GROUP BY name"
        " ORDER BY max(ts) DESC LIMIT ?",
        (key, since, *more, limit),
    )
    return [
        Blocked(str(n), float(ts), None if c is None else str(c), int(k)) for n, ts, c, k in rows
    ]


def was_blocked(config: Config, key: str, name: str, since: float) -> bool:
    """Whether the device `key` had `name` blocked since `since`."""
    here, more = _this_instance(config)
    rows = _read(
        config,
        "SELECT 1 FROM queries WHERE client = ? AND name = ? AND kind = 'blocked' AND ts >= ?"
        f"{here} LIMIT 1",
        (key, name, since, *more),
    )
    return bool(rows)


def logged_block(config: Config, profile: str, name: str, ts: float) -> tuple[float, str | None]:
    """(time, category) of the blocked lookup of `name` by `profile` nearest to `ts`; (ts, None)
    when the log has none."""
    rows = _read(
        config,
        "SELECT ts, category FROM queries WHERE profile = ? AND name = ? AND kind = 'blocked'"
        " ORDER BY abs(ts - ?) LIMIT 1",
        (profile, name, ts),
    )
    if not rows:
        return ts, None
    at, category = rows[0]
    return float(at), None if category is None else str(category)


def blocked_now(request: web.Request, profile: str, name: str, now: float) -> str | None:
    """The category the policy blocks `name` in for `profile` now ("" for none), or None when
    the name is not blocked for it."""
    decision = request.app[BACKEND].policy.decide(profile, name, now)
    if decision.action not in BLOCKING_ACTIONS:
        return None
    return decision.category or ""


def domain(text: str) -> str | None:
    """`text` as a domain name (normalised), or None when it is not one."""
    name = normalize_name(text.strip())
    return name if is_domain_name(name) else None


def category_word(t: Mapping[str, str], category: str | None) -> str:
    """A category in words a child reads ("cờ bạc" for gambling); the name itself when the
    texts have none (a category of the configuration's own)."""
    if not category:
        return t["asks_cat_none"]
    return t.get(f"asks_cat_{category}", category)


def _this_instance(config: Config) -> tuple[str, tuple[object, ...]]:
    """The clause keeping a device's rows to this instance on a shared log (none on SQLite)."""
    if config.log.url is None:
        return "", ()
    return " AND instance = ?", (config.server.instance_name(),)


def _read(config: Config, sql: str, params: tuple[object, ...]) -> list[Any]:
    """The rows of `sql` from the log (SQLite, or the PostgreSQL one); none when there is no log
    yet or it cannot be read (the pages then fall back on the policy)."""
    try:
        with opened_log(config) as log:
            return list(log.rows(sql, params))
    except (FileNotFoundError, FilterDnsError, sqlite3.Error):
        return []
