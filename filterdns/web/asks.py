"""Children's requests to unblock a name, kept in the installation's database.

A child whose page was blocked can ask for it (the web app's request form): the request names
the device (its client key), its profile, the name and a short reason, and waits, "open", until
a parent or a teacher of that profile approves it (usually with a grant, whose id it keeps) or
declines it. Asking is bounded so a device cannot flood the adults: at most 5 requests per device
an hour, one open request per device and name at a time, and 200 open requests in all;
RequestLimited says when the device may ask again.

The table is schema 5's access_requests (querylog/schema.py), written in one `BEGIN IMMEDIATE`
transaction as grants are; the calls are synchronous (the web server runs them in a thread).
"""

from __future__ import annotations

import math
import time
import unicodedata
import urllib.parse
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from filterdns.config import is_domain_name
from filterdns.config.log import LogConfig
from filterdns.dns.names import normalize_name
from filterdns.errors import FilterDnsError
from filterdns.querylog.shareddb import StateDb, state_db

REASON_MAX = 200
PER_CLIENT = 5  # requests per device...
WINDOW = 3600.0  # ...in this many seconds
OPEN_MAX = 200  # open requests in all: past it, asking waits for the adults
COLUMNS = "id, ts, client, profile, name, reason, state, decided_by, decided_at, grant_id"


class RequestError(FilterDnsError):
    """A request could not be made, found or decided; the message says why."""


class RequestLimited(RequestError):
    """Asking again too soon; `retry_at` is when the device may (None: once this one is
    answered)."""

    def __init__(self, message: str, retry_at: float | None = None) -> None:
        self.retry_at = retry_at
        super().__init__(message)


class State(StrEnum):
    """Where a request stands."""

    OPEN = "open"
    APPROVED = "approved"
    DECLINED = "declined"


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """One child's request to unblock a name."""

    id: int
    ts: float
    client: str
    profile: str
    name: str
    reason: str
    state: State
    decided_by: str | None
    decided_at: float | None
    grant_id: int | None

    def to_json(self) -> dict[str, Any]:
        """The request as JSON-ready data."""
        data = asdict(self)
        data["state"] = str(self.state)
        return data


def clean_reason(text: str) -> str:
    """The reason as shown to adults: control characters out, spaces collapsed, 200 at most."""
    kept = (" " if c.isspace() else c for c in text if c.isspace() or c.isprintable())
    return " ".join("".join(kept).split())[:REASON_MAX]


def clean_name(text: str) -> str:
    """The domain name asked for (a pasted address gives its host); RequestError if none."""
    text = text.strip()
    if "/" in text or ":" in text:
        text = urllib.parse.urlsplit(text if "//" in text else f"//{text}").hostname or ""
    name = normalize_name(text)
    if name and not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            name = ""
    if not is_domain_name(name):
        raise RequestError(f"{text[:80]!r} is not a domain name")
    return name


class RequestStore:
    """The children's requests of one installation."""

    def __init__(self, database: LogConfig | Path | StateDb, instance: str = "") -> None:
        self.db = state_db(database)
        # On a database many instances share, a device is its address at this instance.
        self.instance = instance

    def add(
        self, client: str, profile: str, name: str, reason: str, *, now: float | None = None
    ) -> AccessRequest:
        """A new open request; RequestLimited when the device has asked too much."""
        name, reason = clean_name(name), clean_reason(reason)
        if not client or not profile:
            raise RequestError("a request needs the device and its profile")
        now = time.time() if now is None else now
        with self.db.writing(now, "save the request in", RequestError) as conn:
            same = conn.execute(
                "SELECT 1 FROM access_requests WHERE client = ? AND instance = ? AND name = ?"
                " AND state = ?",
                (client, self.instance, name, State.OPEN),
            ).fetchone()
            if same is not None:
                raise RequestLimited(f"{name} is already asked for: wait for the answer")
            count, first = conn.execute(
                "SELECT count(*), min(ts) FROM access_requests WHERE client = ? AND instance = ?"
                " AND ts > ?",
                (client, self.instance, now - WINDOW),
            ).fetchone()
            if count >= PER_CLIENT:
                retry = float(first) + WINDOW
                minutes = max(1, math.ceil((retry - now) / 60))
                raise RequestLimited(
                    f"{PER_CLIENT} requests in an hour is the most: ask again in {minutes} min",
                    retry,
                )
            (waiting,) = conn.execute(
                "SELECT count(*) FROM access_requests WHERE state = ?", (State.OPEN,)
            ).fetchone()
            if waiting >= OPEN_MAX:
                raise RequestLimited(f"{waiting} requests are waiting: ask again once answered")
            (request_id,) = conn.execute(
                "INSERT INTO access_requests (ts, client, profile, name, reason, state, instance)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (now, client, profile, name, reason, State.OPEN, self.instance),
            ).fetchone()
        return AccessRequest(int(request_id), now, client, profile, name, reason,
                             State.OPEN, None, None, None)  # fmt: skip

    def open(self, profiles: Sequence[str] | None = None) -> list[AccessRequest]:
        """The open requests (of these profiles, or all), oldest first."""
        where, params = _of_profiles(profiles)
        return self._select(f"state = ?{where} ORDER BY ts, id", (State.OPEN, *params))

    def get(self, request_id: int) -> AccessRequest | None:
        """The request with that id, or None."""
        found = self._select("id = ?", (request_id,))
        return found[0] if found else None

    def recent(
        self,
        client: str | None = None,
        profiles: Sequence[str] | None = None,
        limit: int = 50,
    ) -> list[AccessRequest]:
        """The latest requests in any state (of one device, of these profiles), newest first."""
        where, params = _of_profiles(profiles)
        if client is not None:
            where, params = (
                f"{where} AND client = ? AND instance = ?",
                (*params, client, self.instance),
            )
        return self._select(f"TRUE{where} ORDER BY ts DESC, id DESC LIMIT ?", (*params, limit))

    def decide(
        self,
        request_id: int,
        *,
        approve: bool,
        by: str,
        grant_id: int | None = None,
        now: float | None = None,
    ) -> AccessRequest:
        """Approve (with the grant made for it) or decline an open request; the request as now.

        RequestError when there is no such request or it was decided already.
        """
        now = time.time() if now is None else now
        state = State.APPROVED if approve else State.DECLINED
        with self.db.writing(now, "save the decision in", RequestError) as conn:
            row = conn.execute(
                "SELECT state, decided_by FROM access_requests WHERE id = ?", (request_id,)
            ).fetchone()
            if row is None:
                raise RequestError(f"no request #{request_id}")
            if row[0] != State.OPEN:
                raise RequestError(f"request #{request_id} was already {row[0]} by {row[1]}")
            conn.execute(
                "UPDATE access_requests SET state = ?, decided_by = ?, decided_at = ?,"
                " grant_id = ? WHERE id = ?",
                (state, unicodedata.normalize("NFC", by), now, grant_id, request_id),
            )
            (found,) = _rows(conn.execute(f"SELECT {COLUMNS} FROM access_requests WHERE id = ?",
                                          (request_id,)).fetchall())  # fmt: skip
        return found

    def _select(self, where: str, params: Sequence[object]) -> list[AccessRequest]:
        sql = f"SELECT {COLUMNS} FROM access_requests WHERE {where}"
        return _rows(self.db.rows(sql, params, "read the requests in", RequestError))


def _of_profiles(profiles: Sequence[str] | None) -> tuple[str, tuple[str, ...]]:
    if profiles is None:
        return "", ()
    return f" AND profile IN ({', '.join('?' * len(profiles))})", tuple(profiles)


def _rows(rows: Sequence[Sequence[Any]]) -> list[AccessRequest]:
    out = []
    for i, ts, client, profile, name, reason, state, by, at, grant in rows:
        try:
            kind = State(state)
        except ValueError:
            kind = State.DECLINED  # a state this version does not know is no open request
        out.append(AccessRequest(int(i), float(ts), str(client), str(profile), str(name),
                                 str(reason or ""), kind, by, None if at is None else float(at),
                                 None if grant is None else int(grant)))  # fmt: skip
    return out
