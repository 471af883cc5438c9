"""The terminal link: ask the configured upstream resolvers.

One deadline per query (`upstreams.timeout`) covers every attempt. Attempts are staggered: the
first server in the strategy's order is asked at once; when it has not answered after
`timeout / number of servers` (at least 100 ms) the next one is asked too, and so on, and the
first good answer wins. A server that fails fast (ICMP unreachable, SERVFAIL) hands over to the
next at once. A failing server is skipped for a back-off period that doubles with each failure
(1 s, 2 s, 4 s ... up to `upstreams.backoff`); when every server is backing off they are all tried
anyway rather than answering SERVFAIL unasked. Identical queries in flight at the same moment
share one exchange.

DNSSEC passes through: the client's DO and CD bits go upstream with its question (and are part
of the question's key, so a DNSSEC answer never meets a plain question); the AD bit of a reply
is kept only when the servers are trusted to validate (`upstreams.trust_ad`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from filterdns import replies, wire
from filterdns.config import UpstreamServer
from filterdns.errors import UpstreamError, WireError
from filterdns.model import Kind, Request, Response, servfail
from filterdns.wire import Query

log = logging.getLogger(__name__)

MIN_STAGGER = 0.1
FIRST_BACKOFF = 1.0
EWMA_WEIGHT = 0.3  # weight of the newest round-trip time in the `fastest` estimate
# Answers that say "this server could not help", not "this name has no data": try another.
FAILURE_RCODES = {wire.SERVFAIL: "SERVFAIL", wire.REFUSED: "REFUSED", 4: "NOTIMP", 1: "FORMERR"}


class Exchanger(Protocol):
    """What the resolver needs of `transport.Transport` (tests script it per server)."""

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
        self.trust_ad = trust_ad  # the servers validate DNSSEC: their AD bit reaches clients
        self.health = {server: Health() for server in self.servers}
        self.coalesced = 0
        self._turn = itertools.count()
        self._inflight: dict[bytes, asyncio.Future[Response]] = {}

    def resolve_now(self, request: Request) -> Response | None:
        """Never ready without waiting: the upstreams must be asked."""
        return None

    async def resolve(self, request: Request) -> Response:
        """Ask the upstreams, joining an identical exchange already in flight."""
        key = request.query.key
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._resolve(request.query))
            self._inflight[key] = pending
            pending.add_done_callback(lambda done: self._forget(key, done))
        else:
            self.coalesced += 1
        # shield: one client giving up (TCP connection closed) must not cancel the exchange
        # that other clients are waiting on.
        return await asyncio.shield(pending)

    def _forget(self, key: bytes, done: asyncio.Future[Response]) -> None:
        if self._inflight.get(key) is done:
            del self._inflight[key]

    def order(self, now: float) -> list[UpstreamServer]:
        """The servers in the order this query will try them: healthy first, by strategy."""
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

    async def _resolve(self, query: Query) -> Response:
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + self.timeout
        order = self.order(start)
        stagger = max(MIN_STAGGER, self.timeout / len(order))
        attempts: dict[asyncio.Task[bytes], tuple[UpstreamServer, float]] = {}
        errors: list[str] = []
        waiting = iter(order)

        def launch() -> bool:
            server = next(waiting, None)
            if server is None:
                return False
            task = asyncio.ensure_future(
                self.transport.exchange(
                    server,
                    query.qname_wire,
                    query.qtype,
                    query.qclass,
                    deadline,
                    dnssec_ok=query.dnssec_ok,
                    cd=bool(query.flags & wire.CD),
                )
            )
            attempts[task] = (server, loop.time())
            return True

        more = launch()
        next_launch = start + stagger
        try:
            while attempts:
                now = loop.time()
                if now >= deadline:
                    break
                wait_until = min(deadline, next_launch) if more else deadline
                done, _ = await asyncio.wait(
                    attempts, timeout=max(0.0, wait_until - now), return_when="FIRST_COMPLETED"
                )
                if not done:
                    if more and loop.time() >= next_launch:
                        more = launch()
                        next_launch = loop.time() + stagger
                    continue
                for task in done:
                    server, sent = attempts.pop(task)
                    outcome = self._outcome(task, server, loop.time() - sent)
                    if isinstance(outcome, Response):
                        self._outpaced(attempts, stagger, loop.time())
                        return outcome
                    errors.append(outcome)
                    if more:  # a fast failure hands over at once
                        more = launch()
                        next_launch = loop.time() + stagger
            for server, _sent in attempts.values():
                errors.append(
                    self._failed(server, f"upstream {server} timed out after {self.timeout:g} s")
                )
            reason = "; ".join(errors) or "no upstream answered"
            return servfail(query, f"every upstream failed: {reason}")
        finally:
            for task in attempts:
                task.cancel()
            for task in attempts:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def _outcome(
        self, task: asyncio.Task[bytes], server: UpstreamServer, elapsed: float
    ) -> Response | str:
        """The Response from a finished attempt, or why it failed (and note the failure)."""
        try:
            reply = task.result()
            answer = replies.analyse(reply, trust_ad=self.trust_ad)
        except UpstreamError as exc:
            return self._failed(server, str(exc))
        except WireError as exc:
            return self._failed(server, f"upstream {server} answered a malformed message: {exc}")
        failure = FAILURE_RCODES.get(answer.rcode)
        if failure is not None:
            return self._failed(server, f"upstream {server} answered {failure}")
        self._answered(server, elapsed)
        return Response(Kind.RESOLVED, answer, reason=f"answered by {server}", upstream=str(server))

    def _outpaced(
        self,
        attempts: dict[asyncio.Task[bytes], tuple[UpstreamServer, float]],
        stagger: float,
        now: float,
    ) -> None:
        """Servers still silent after a full stagger while another answered back off too.

        Otherwise a dead first server would cost every query a stagger's wait.
        """
        for server, sent in attempts.values():
            if now - sent >= stagger:
                self._failed(server, f"upstream {server} did not answer within {stagger:g} s")

    def _answered(self, server: UpstreamServer, elapsed: float) -> None:
        if self.on_exchange is not None:
            self.on_exchange(str(server), elapsed, True)
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

    def _failed(self, server: UpstreamServer, reason: str) -> str:
        if self.on_exchange is not None:
            self.on_exchange(str(server), None, False)
        health = self.health[server]
        health.failures += 1
        health.failed += 1
        pause = min(self.backoff, FIRST_BACKOFF * 2 ** (health.failures - 1))
        health.skip_until = asyncio.get_running_loop().time() + pause
        if health.rtt is not None:
            health.rtt = max(health.rtt, self.timeout)  # `fastest` prefers others for a while
        if health.failures == 1:
            log.warning("%s; skipping it for %g s", reason, pause)
        return reason
