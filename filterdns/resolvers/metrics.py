"""The metrics link: times each query and counts its outcome by kind, profile and category.

It sits right below the client link, so every answer is counted with the profile it was given,
whichever link below answered it. It is in the chain only with `server.metrics`: without a
scraper nobody reads the counts, and the two clock reads per query are not paid.
"""

from __future__ import annotations

import time
from typing import Protocol

from filterdns.dns.model import Request, Response
from filterdns.resolvers.base import Link, Resolver


class Counts(Protocol):
    """What the chain reports to (`ops.metrics.Metrics`): answers, and upstream exchanges."""

    def observe(self, request: Request, response: Response, seconds: float) -> None:
        """Count one answered query and how long it took."""
        ...

    def upstream(self, server: str, seconds: float | None, ok: bool) -> None:
        """Count one exchange with an upstream server: its duration when known, and whether
        it succeeded."""
        ...


class MetricsResolver(Link):
    """Times each query below and counts its outcome."""

    def __init__(self, next_resolver: Resolver, metrics: Counts) -> None:
        super().__init__(next_resolver)
        self.observe = metrics.observe

    async def resolve(self, request: Request) -> Response:
        """Resolve below; count the answer with the time it took."""
        start = time.perf_counter()
        response = await self.next.resolve(request)
        self.observe(request, response, time.perf_counter() - start)
        return response

    def resolve_now(self, request: Request) -> Response | None:
        """An answer ready below, counted with the time it took."""
        start = time.perf_counter()
        response = self.next.resolve_now(request)
        if response is not None:
            self.observe(request, response, time.perf_counter() - start)
        return response
