"""The terminal link: ask the configured upstream resolvers.

One deadline per query (`upstreams.timeout`) covers every attempt. Attempts are staggered: the
first server in the strategy's order is asked at once; when it has not answered after
`timeout / number of servers` (at least 100 ms) the next one is asked too, and so on, and the
first good answer wins. A server that fails fast (ICMP unreachable, SERVFAIL) hands over to the
next at once. A failing server is skipped for a back-off period that doubles with each failure
(1 s, 2 s, 4 s ... up to `upstreams.backoff`, however long the outage: `backoff_pause` never
computes a power past MAX_DOUBLINGS); when every server is backing off they are all tried anyway
rather than answering SERVFAIL unasked. Identical queries in flight at the same moment share one
exchange.

Exchanges in flight are capped (`Outstanding`: `upstreams.max_outstanding` in all and
`max_outstanding_per_server` to each server), because each one holds memory and, over UDP, a
socket until its answer or deadline: an upstream that stops answering would otherwise collect
every query sent meanwhile, and the process would run out of open files. A server at its cap is
passed over for the next; a query that finds no room is answered at once with SERVFAIL
(Kind.FAILED, so the cache above serves stale data instead when it has some), asking nothing.

DNSSEC passes through: the client's DO and CD bits go upstream with its question (and are part
of the question's key, so a DNSSEC answer never meets a plain question); the AD bit of a reply
is kept only when the servers are trusted to validate (`upstreams.trust_ad`).

An exchange runs without a task of its own (`resolvers/exchange.py`): the attempts' futures call
it back, and two `DelayWheel`s, one loop timer each, bring every query's stagger and deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from filterdns.config import UpstreamServer
from filterdns.dns import replies, wire
from filterdns.dns.model import Kind, Request, Response, servfail
from filterdns.dns.wire import Query
from filterdns.errors import UpstreamError, WireError
from filterdns.resolvers.exchange import Exchange
from filterdns.wheel import DelayWheel

log = logging.getLogger(__name__)

MIN_STAGGER = 0.1
FIRST_BACKOFF = 1.0
# 2**62 s is longer than any back-off anyone writes; past it the pause stays flat. Without this
# bound, 2 ** failures overflows a float after about 1,000 failures in a row (a long outage).
MAX_DOUBLINGS = 62
OVERFLOW_WARN_EVERY = 60.0  # seconds between two warnings that the caps are reached
# Queries that may wait on exchanges other queries started, per exchange allowed in flight: a
# classroom asking one new name at once joins one exchange; a flood of one name (about 5 KB a
# waiting query) stops at 8 x 512 = 4,096 by default.
JOINERS_PER_EXCHANGE = 8
EWMA_WEIGHT = 0.3  # weight of the newest round-trip time in the `fastest` estimate
# Answers that say "this server could not help", not "this name has no data": try another.
FAILURE_RCODES = {wire.SERVFAIL: "SERVFAIL", wire.REFUSED: "REFUSED", 4: "NOTIMP", 1: "FORMERR"}


def backoff_pause(failures: int, ceiling: float) -> float:
    """Seconds a server is skipped after `failures` consecutive failures: 1, 2, 4 ... `ceiling`."""
    if failures <= 0:
        return 0.0
    return min(ceiling, FIRST_BACKOFF * 2.0 ** min(failures - 1, MAX_DOUBLINGS))


class Exchanger(Protocol):
    """What the resolver needs of `transport.Transport` (tests script it per server)."""

    def start(
        self,
        server: UpstreamServer,
        qname_wire: bytes,
        qtype: int,
        qclass: int,
        deadline: float,
        *,
        dnssec_ok: bool = False,
        cd: bool = False,
        notify: Callable[[asyncio.Future[bytes]], None] | None = None,
    ) -> asyncio.Future[bytes]:
        """`exchange` begun now: its reply or its UpstreamError, as a future (cancel to give
        up); `notify(future)` once it is settled, unless the caller cancelled it."""
        ...

    async def exchange(
        self,
        server: UpstreamServer,
        qname_wire: bytes,
        qtype: int,
        qclass: int,
        deadline: float,
        *,
        dnssec_ok: bool = False,
        cd: bool = False,
    ) -> bytes:
        """One validated reply from `server` before `deadline` (loop time), or UpstreamError;
        the query carries the DO and CD bits given."""
        ...


@dataclass(slots=True)
class Health:
    """What the resolver remembers about one upstream server."""

    failures: int = 0  # consecutive failures
    skip_until: float = 0.0  # loop time before which the server is skipped
    rtt: float | None = None  # smoothed round-trip time in seconds
    answered: int = 0
    failed: int = 0


class Outstanding:
    """Exchanges in flight to the upstreams, capped in all and per server.

    One is shared by every upstream link (conditional routes too) and kept across reloads, so
    the caps hold whatever the chain; a reload may change them (`resize`).
    """

    def __init__(self, total: int = 512, per_server: int = 256) -> None:
        self.total = total
        self.per_server = per_server
        self.in_flight = 0
        self.by_server: dict[UpstreamServer, int] = {}
        self.joined = 0  # queries waiting on an identical one's exchange
        self.overflowed = 0  # queries answered without asking, because of the caps
        self._warned_at: float | None = None

    def resize(self, total: int, per_server: int) -> None:
        """New caps; exchanges already in flight finish and count until they do."""
        self.total, self.per_server = total, per_server

    def has_room(self, servers: Sequence[UpstreamServer]) -> bool:
        """Whether an exchange with one of `servers` may start now."""
        if self.in_flight >= self.total:
            return False
        by_server, cap = self.by_server, self.per_server
        for server in servers:  # noqa: SIM110 (a loop, not any(): no generator per query)
            if by_server.get(server, 0) < cap:
                return True
        return False

    def may_join(self) -> bool:
        """Whether one more query may wait on an identical one's exchange."""
        return self.joined < self.total * JOINERS_PER_EXCHANGE

    def take(self, server: UpstreamServer) -> bool:
        """Count one exchange with `server` when there is room for it."""
        count = self.by_server.get(server, 0)
        if self.in_flight >= self.total or count >= self.per_server:
            return False
        self.in_flight += 1
        self.by_server[server] = count + 1
        return True

    def give_back(self, server: UpstreamServer) -> None:
        """One exchange with `server` is over."""
        self.in_flight -= 1
        count = self.by_server[server] - 1
        if count:
            self.by_server[server] = count
        else:
            del self.by_server[server]  # only servers with exchanges in flight stay

    def overflow(self, query: Query, now: float) -> Response:
        """The at-once answer to a query that found no room (warned about once a minute)."""
        self.overflowed += 1
        if self._warned_at is None or now - self._warned_at >= OVERFLOW_WARN_EVERY:
            self._warned_at = now
            log.warning(
                "queries to the upstreams at their caps: %d in flight (upstreams.max_outstanding"
                " %d, max_outstanding_per_server %d), %d more waiting on identical ones (at most"
                " %d); new ones get stale data or SERVFAIL at once until some are answered or"
                " time out",
                self.in_flight,
                self.total,
                self.per_server,
                self.joined,
                self.total * JOINERS_PER_EXCHANGE,
            )
        return servfail(query, "too many queries in flight to the upstreams")


class UpstreamResolver:
    """Forward a query to the configured upstreams; SERVFAIL (Kind.FAILED) when all fail."""

    def __init__(
        self,
        servers: Sequence[UpstreamServer],
        *,
        strategy: str,
        timeout: float,
        backoff: float,
        transport: Exchanger,
        on_exchange: Callable[[str, float | None, bool], None] | None = None,
        outstanding: Outstanding | None = None,
        trust_ad: bool = False,
    ) -> None:
        if not servers:
            raise ValueError("an upstream resolver needs at least one server")
        self.servers = tuple(servers)
        self.strategy = strategy
        self.timeout = timeout
        self.backoff = backoff
        self.transport = transport
        self.on_exchange = on_exchange  # (server, seconds or None, ok): metrics
        self.outstanding = outstanding or Outstanding()
        self.trust_ad = trust_ad  # the servers validate DNSSEC: their AD bit reaches clients
        self.health = {server: Health() for server in self.servers}
        self._healths = tuple(self.health.values())  # in the servers' order
        self._names = {server: str(server) for server in self.servers}  # built once, not per answer
        self.coalesced = 0
        self._turn = itertools.count()
        self._inflight: dict[bytes, Exchange] = {}
        # Every query's deadline and next stagger lie the same time after they are set: one
        # timer each for all of them (`wheel`), not one per query.
        self.stagger = max(MIN_STAGGER, timeout / len(self.servers))
        over = operator.attrgetter("over")  # an answered exchange: its moments are not needed
        self.deadlines: DelayWheel[Exchange] = DelayWheel(timeout, Exchange.expire, over)
        self.staggers: DelayWheel[Exchange] = DelayWheel(self.stagger, Exchange.next_turn, over)

    def resolve_now(self, request: Request) -> Response | None:
        """Never ready without waiting: the upstreams must be asked."""
        return None

    async def resolve(self, request: Request) -> Response:
        """Ask the upstreams, joining an identical exchange already in flight."""
        key = request.query.key
        outstanding = self.outstanding
        pending = self._inflight.get(key)
        if pending is None:
            loop = asyncio.get_running_loop()
            if not outstanding.has_room(self.servers):  # no task, no socket: answer now
                return outstanding.overflow(request.query, loop.time())
            pending = Exchange(self, request.query, loop)
            if pending.over:  # the room seen above was taken meanwhile
                return outstanding.overflow(request.query, loop.time())
            self._inflight[key] = pending
            return await pending.wait()
        if not outstanding.may_join():  # the same name, flooded: every waiter holds memory
            return outstanding.overflow(request.query, asyncio.get_running_loop().time())
        self.coalesced += 1
        outstanding.joined += 1
        try:
            return await pending.wait()
        finally:
            outstanding.joined -= 1

    def forget(self, key: bytes, done: Exchange) -> None:
        """The exchange `done` for the question `key` is over: the next one asks again."""
        if self._inflight.get(key) is done:
            del self._inflight[key]

    def order(self, now: float) -> Sequence[UpstreamServer]:
        """The servers in the order this query will try them: healthy first, by strategy."""
        if self.strategy == "failover":  # the usual case, and nobody resting: as configured
            for health in self._healths:
                if health.skip_until > now:
                    break
            else:
                return self.servers
        servers = list(self.servers)
        if self.strategy == "round_robin":
            start = next(self._turn) % len(servers)
            servers = servers[start:] + servers[:start]
        elif self.strategy == "fastest":
            # Untried servers sort first (rtt 0) so every server gets measured.
            servers.sort(key=lambda s: self.health[s].rtt or 0.0)
        healthy = [s for s in servers if self.health[s].skip_until <= now]
        resting = [s for s in servers if self.health[s].skip_until > now]
        resting.sort(key=lambda s: self.health[s].skip_until)
        return healthy + resting

    def outcome(
        self, attempt: asyncio.Future[bytes], server: UpstreamServer, elapsed: float
    ) -> Response | str:
        """The Response from a finished attempt, or why it failed (and note the failure)."""
        if attempt.cancelled():  # not by us: the transport closed under it
            return self.failed(server, f"upstream {server}: the exchange was cancelled")
        try:
            reply = attempt.result()
            answer = replies.analyse(reply, trust_ad=self.trust_ad)
        except UpstreamError as exc:
            return self.failed(server, str(exc))
        except WireError as exc:
            return self.failed(server, f"upstream {server} answered a malformed message: {exc}")
        failure = FAILURE_RCODES.get(answer.rcode)
        if failure is not None:
            return self.failed(server, f"upstream {server} answered {failure}")
        self.answered(server, elapsed)
        name = self._names[server]
        return Response(Kind.RESOLVED, answer, reason="answered by " + name, upstream=name)

    def outpaced(
        self, attempts: dict[asyncio.Future[bytes], tuple[UpstreamServer, float]], now: float
    ) -> None:
        """Servers still silent after a full stagger while another answered back off too.

        Otherwise a dead first server would cost every query a stagger's wait.
        """
        stagger = self.stagger
        for server, sent in attempts.values():
            if now - sent >= stagger:
                self.failed(server, f"upstream {server} did not answer within {stagger:g} s")

    def answered(self, server: UpstreamServer, elapsed: float) -> None:
        if self.on_exchange is not None:
            self.on_exchange(self._names[server], elapsed, True)
        health = self.health[server]
        if health.failures:
            log.info("upstream %s answers again", server)
        health.failures = 0
        health.skip_until = 0.0
        health.answered += 1
        health.rtt = (
            elapsed
            if health.rtt is None
            else (1 - EWMA_WEIGHT) * health.rtt + EWMA_WEIGHT * elapsed
        )

    def failed(self, server: UpstreamServer, reason: str) -> str:
        if self.on_exchange is not None:
            self.on_exchange(str(server), None, False)
        health = self.health[server]
        health.failures += 1
        health.failed += 1
        pause = backoff_pause(health.failures, self.backoff)
        health.skip_until = asyncio.get_running_loop().time() + pause
        if health.rtt is not None:
            health.rtt = max(health.rtt, self.timeout)  # `fastest` prefers others for a while
        if health.failures == 1:
            log.warning("%s; skipping it for %g s", reason, pause)
        return reason
