"""One question's exchange with the upstreams: its attempts, staggered, under one deadline.

The rules are the upstream link's (`resolvers/upstream.py`'s docstring). This is how they run:
without a task or a coroutine of its own. An `Exchange` asks the first server at once through
`Exchanger.start` (over UDP a future the socket's reader settles, no task either), and reacts
to events: an attempt ending (its done callback: an answer wins, a fast failure hands over to the
next server), the stagger passing, the deadline passing. The last two come from the resolver's
two `DelayWheel`s, one timer each for every query in flight. The first answer, or the SERVFAIL
naming every failure, settles the future each asking query awaits (`wait`): set directly, with
no `asyncio.shield` and its extra turn of the loop between the answer and the query.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from filterdns.config import UpstreamServer
from filterdns.dns import wire
from filterdns.dns.model import Response, servfail
from filterdns.dns.wire import Query

if TYPE_CHECKING:
    from filterdns.resolvers.upstream import UpstreamResolver


class Exchange:
    """The attempts at the upstreams for one question, and the future of its answer."""

    __slots__ = ("attempts", "deadline", "errors", "loop", "order", "over", "query", "resolver",
                 "tried", "turn_at", "waiters")  # fmt: skip

    def __init__(
        self, resolver: UpstreamResolver, query: Query, loop: asyncio.AbstractEventLoop
    ) -> None:
        now = loop.time()
        self.resolver = resolver
        self.query = query
        self.loop = loop
        # One future per asking query, not one shared: a query that gives up (its TCP client
        # gone) cancels its own, and the others still get the answer.
        self.waiters: list[asyncio.Future[Response]] = []
        self.over = False  # answered: the wheels, which keep it until its moments, skip it
        self.order: Sequence[UpstreamServer] = resolver.order(now)
        self.tried = 0  # servers of `order` passed (asked, or at their cap)
        self.attempts: dict[asyncio.Future[bytes], tuple[UpstreamServer, float]] = {}
        self.errors: list[str] = []
        self.turn_at = 0.0  # when the next server is asked, if the ones asked stay silent
        self.deadline = resolver.deadlines.add(loop, now, self)
        self.launch(now)
        if not self.attempts:  # the room seen by `resolve` was taken meanwhile: nobody asked
            self.over = True

    def wait(self) -> asyncio.Future[Response]:
        """A future of the answer for one more asking query."""
        waiter = self.loop.create_future()
        self.waiters.append(waiter)
        return waiter

    def launch(self, now: float) -> None:
        """Ask the next server with room for one more exchange (none left: nothing)."""
        resolver, order, query = self.resolver, self.order, self.query
        while self.tried < len(order):
            server = order[self.tried]
            self.tried += 1
            if resolver.outstanding.take(server):
                attempt = resolver.transport.start(
                    server,
                    query.qname_wire,
                    query.qtype,
                    query.qclass,
                    self.deadline,
                    dnssec_ok=query.dnssec_ok,
                    cd=bool(query.flags & wire.CD),
                    notify=functools.partial(self.ended, server),
                )
                self.attempts[attempt] = (server, now)
                if self.tried < len(order):  # someone to ask if this one stays silent
                    self.turn_at = resolver.staggers.add(self.loop, now, self)
                return

    def ended(self, server: UpstreamServer, attempt: asyncio.Future[bytes]) -> None:
        """An attempt is over: its server's room is given back; an answer wins, a failure
        hands over to the next server at once."""
        resolver = self.resolver
        sent = self.attempts.pop(attempt, None)
        if sent is None:  # given up on by `finish`, which gave its room back
            return
        resolver.outstanding.give_back(server)
        now = self.loop.time()
        outcome = resolver.outcome(attempt, server, now - sent[1])
        if isinstance(outcome, Response):
            resolver.outpaced(self.attempts, now)
            self.finish(outcome)
            return
        self.errors.append(outcome)
        self.launch(now)
        if not self.attempts:  # nobody left to ask or to wait for
            self.finish(self.failure())

    def next_turn(self, due: float) -> None:
        """The stagger passed: ask the next server too, unless answered or handed over since."""
        if due == self.turn_at and not self.over:
            self.launch(self.loop.time())

    def expire(self, _due: float) -> None:
        """The deadline passed: the servers still silent failed; SERVFAIL naming each failure."""
        if self.over:
            return
        resolver = self.resolver
        for server, _sent in self.attempts.values():
            self.errors.append(
                resolver.failed(server, f"upstream {server} timed out after {resolver.timeout:g} s")
            )
        self.finish(self.failure())

    def failure(self) -> Response:
        """The SERVFAIL naming why each server failed."""
        reason = "; ".join(self.errors) or "no upstream answered"
        return servfail(self.query, f"every upstream failed: {reason}")

    def finish(self, response: Response) -> None:
        """Answer every asking query; give up the attempts still running.

        What the answer holds is let go of here, and the wheels are told that this object no
        longer needs its moments (they drop such objects in batches, `DelayWheel.settled`)."""
        self.over = True
        resolver = self.resolver
        resolver.forget(self.query.key, self)
        resolver.deadlines.settled()
        if self.turn_at:
            resolver.staggers.settled()
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():  # not given up on
                waiter.set_result(response)
        self.order, self.errors = (), []
        attempts, self.attempts = self.attempts, {}
        for attempt, (server, _sent) in attempts.items():
            attempt.cancel()  # not notified of: its room is given back here
            self.resolver.outstanding.give_back(server)
