"""Assembles the resolver chain and runs the proxy: start, signals, graceful stop.

`build_chain` is the one place that knows the order of the links.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from filterdns.config import Config, ListenAddress, UpstreamServer
from filterdns.lists.catalog import ListSet
from filterdns.resolvers.access import AccessResolver, LocalAnswerResolver
from filterdns.resolvers.base import Resolver
from filterdns.resolvers.cache import CacheResolver
from filterdns.resolvers.conditional import ConditionalResolver
from filterdns.resolvers.upstream import UpstreamResolver
from filterdns.server import DnsServer
from filterdns.transport import Transport

log = logging.getLogger(__name__)


@dataclass
class Chain:
    """The head of the chain plus the links that hold background work to close."""

    head: Resolver
    cache: CacheResolver
    upstream: UpstreamResolver
    links: list[Resolver] = field(default_factory=list)


def build_chain(
    config: Config, transport: Transport, clock: Callable[[], float] = time.monotonic
) -> Chain:
    """Order the links of the request path, from the terminal upstream up to the ACL."""
    up = config.upstreams

    def upstream_for(servers: Sequence[UpstreamServer]) -> UpstreamResolver:
        return UpstreamResolver(
            servers,
            strategy=up.strategy,
            timeout=up.timeout,
            backoff=up.backoff,
            transport=transport,
        )

    # upstream: terminal; the configured resolvers, one deadline per query, coalesced.
    upstream = upstream_for(up.servers)
    head: Resolver = upstream
    # conditional: local suffixes (home.arpa, the LAN's reverse zone) go to the router; below
    # the cache so those answers are cached too. All share one transport (and its TCP pool).
    if up.conditional:
        routes = [(suffix, upstream_for(servers)) for suffix, servers in up.conditional]
        head = ConditionalResolver(head, routes)
    # cache: below the policy so one cache serves every profile and a schedule flip applies
    # on the very next query; serves stale data when everything below fails.
    cache = CacheResolver(head, config.cache, clock=clock)
    head = cache
    # local answers: ANY (RFC 8482), NOTIMP, BADVERS; nothing below needs to see those.
    head = LocalAnswerResolver(head)
    # access: first, so nobody outside server.allow_clients reaches anything (no open resolver).
    head = AccessResolver(head, config.server.allow_clients)
    return Chain(head, cache, upstream)


class App:
    """One running proxy: transport, chain and server, started and stopped together."""

    def __init__(
        self,
        config: Config,
        *,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.transport = transport or Transport()
        self.chain = build_chain(config, self.transport, clock)
        self.lists = ListSet(config.lists, config.categories)
        self.server = DnsServer(self.chain.head, config.server)
        self._stop = asyncio.Event()
        self._refresh: asyncio.Task[None] | None = None

    async def start(self) -> list[ListenAddress]:
        """Load the category index, then bind the listeners; returns the addresses bound.

        The index is loaded before the first query is answered so that nothing is ever served
        unfiltered; when no source changed since the last run it is mapped from disk at once.
        Remote sources are then kept fresh in the background.
        """
        await self.lists.load()
        bound = await self.server.start(skip_unavailable=self.config.source is None)
        self._refresh = asyncio.create_task(self.lists.run(), name="lists-refresh")
        return bound

    async def stop(self) -> None:
        """Finish in-flight queries (bounded wait), then close every socket and task."""
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh
        await self.server.stop()
        await self.chain.cache.close()
        await self.transport.close()
        self.lists.close()

    def request_stop(self) -> None:
        """Ask `run` to stop (signal handlers call this)."""
        self._stop.set()

    async def run(self, ready: Callable[[list[ListenAddress]], None] | None = None) -> None:
        """Start, report readiness, serve until SIGTERM/SIGINT or `request_stop`, then stop."""
        bound = await self.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        try:
            if ready is not None:
                ready(bound)
            await self._stop.wait()
            log.info("stopping: finishing in-flight queries")
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            await self.stop()
        log.info("stopped")
