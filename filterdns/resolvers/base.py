"""The contract every link of the chain keeps.

A link answers in one of two ways. `resolve_now` is the synchronous fast path: it returns a
Response when one is ready without waiting (a cache hit, a blocked name, an ACL refusal, a local
answer), or None when only `resolve` can answer (an upstream must be asked). The server tries
`resolve_now` first and only then spends a task on `resolve`; a link that returns a Response
from `resolve_now` must do exactly what `resolve` would (counters, log rows), and a link that
returns None must leave no trace, since `resolve` will see the same request next.
"""

from __future__ import annotations

from typing import Protocol

from filterdns.dns.model import Request, Response


class Resolver(Protocol):
    """Anything that turns a Request into a Response."""

    async def resolve(self, request: Request) -> Response:
        """Answer `request`, or ask the next link."""
        ...

    def resolve_now(self, request: Request) -> Response | None:
        """The answer when it is ready without waiting, else None (and no side effect)."""
        ...


class Link:
    """A resolver that either answers or passes the request on to `next`."""

    def __init__(self, next_resolver: Resolver) -> None:
        self.next = next_resolver

    async def resolve(self, request: Request) -> Response:
        """By default, pass the request on."""
        return await self.next.resolve(request)

    def resolve_now(self, request: Request) -> Response | None:
        """By default nothing is ready without waiting: a link opts in to the fast path."""
        return None
