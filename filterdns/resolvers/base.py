"""The contract every link of the chain keeps."""

from __future__ import annotations

from typing import Protocol

from filterdns.model import Request, Response


class Resolver(Protocol):
    """Anything that turns a Request into a Response."""

    async def resolve(self, request: Request) -> Response:
        """Answer `request`, or ask the next link."""
        ...


class Link:
    """A resolver that either answers or passes the request on to `next`."""

    def __init__(self, next_resolver: Resolver) -> None:
        self.next = next_resolver

    async def resolve(self, request: Request) -> Response:
        """By default, pass the request on."""
        return await self.next.resolve(request)
