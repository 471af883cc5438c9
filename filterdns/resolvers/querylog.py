"""The query-log link: records every blocked lookup (and, with `log.log_allowed`, the rest).

It sits between the client link and the policy, so it sees who asked (profile, client name) and
the policy's answer (kind, category, rule, list source, answer mode). Recording is
an append to the log's bounded queue: it never waits for the disk, and a full queue or a
failing database only costs the row (counted), never the answer. Blocked lookups also go to the
alerts, which count them per rule.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from filterdns.dns.model import Kind, Request, Response
from filterdns.querylog.store import LogRecord
from filterdns.resolvers.base import Link, Resolver

# Allowed lookups, kept with `log.log_allowed`. The only local answers that reach this link are
# those of `local_records:` (ANY, NOTIMP and BADVERS are answered above the client link).
ALLOWED_KINDS = frozenset({Kind.RESOLVED, Kind.CACHED, Kind.REWRITTEN, Kind.STALE, Kind.LOCAL})
QTYPES = {
    1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA",
    33: "SRV", 35: "NAPTR", 43: "DS", 48: "DNSKEY", 64: "SVCB", 65: "HTTPS", 255: "ANY",
}  # fmt: skip


def qtype_text(qtype: int) -> str:
    """ "A", "AAAA", ... or "TYPE65534" (RFC 3597) for the rest."""
    return QTYPES.get(qtype) or f"TYPE{qtype}"


def qtype_number(text: str) -> int | None:
    """The type named "A", "aaaa", "TYPE65" ...; None for anything else."""
    text = text.upper()
    for number, name in QTYPES.items():
        if name == text:
            return number
    if text.startswith("TYPE") and text[4:].isdigit() and 0 < int(text[4:]) < 65536:
        return int(text[4:])
    return None


class QueryLogResolver(Link):
    """Hand the outcome of each query to the log (and blocked ones to the alerts)."""

    def __init__(
        self,
        next_resolver: Resolver,
        sink: Callable[[LogRecord], bool],
        *,
        observe: Callable[[LogRecord], None],
        log_allowed: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(next_resolver)
        self.sink = sink
        self.log_allowed = log_allowed
        self.observe = observe
        self.clock = clock

    async def resolve(self, request: Request) -> Response:
        """Resolve below, then record the outcome without waiting."""
        response = await self.next.resolve(request)
        self._record(request, response)
        return response

    def resolve_now(self, request: Request) -> Response | None:
        """An answer the links below have ready, recorded like any other."""
        response = self.next.resolve_now(request)
        if response is not None:
            self._record(request, response)
        return response

    def record(self, request: Request, response: Response) -> None:
        """Record an answer given without this link (the answer memo replays its row)."""
        self._record(request, response)

    def _record(self, request: Request, response: Response) -> None:
        kind = response.kind
        if kind is _BLOCKED or (self.log_allowed and kind in ALLOWED_KINDS):
            query = request.query
            # The row as a plain tuple made a LogRecord: LogRecord(...) handles keywords, and
            # this is built for every blocked lookup.
            record = _new_tuple(LogRecord, (
                self.clock(), request.client_ip, request.client_name, request.profile,
                query.qname, QTYPES.get(query.qtype) or qtype_text(query.qtype),
                _BLOCKED_TEXT if kind is _BLOCKED else _KINDS[kind],
                response.category, response.rule, response.reason, response.source,
                response.mode,
            ))  # fmt: skip
            self.sink(record)
            if kind is _BLOCKED:
                self.observe(record)


_new_tuple = tuple.__new__
_BLOCKED = Kind.BLOCKED  # a module global: `Kind.BLOCKED` is a class attribute lookup (0.1 µs)
_KINDS = {kind: kind.value for kind in Kind}  # a dict lookup is cheaper than Enum.value
_BLOCKED_TEXT = _BLOCKED.value  # and no lookup cheaper still: Enum's __hash__ is Python code
