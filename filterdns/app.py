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

from filterdns.alerts import Alerter, AlertRule
from filterdns.clients import ClientDirectory, ClientRule
from filterdns.config import Config, ListenAddress, UpstreamServer
from filterdns.grants import GrantStore, grants_path
from filterdns.lists.catalog import ListSet
from filterdns.neighbors import Neighbours
from filterdns.policy import Policy
from filterdns.resolvers.access import AccessResolver, LocalAnswerResolver
from filterdns.resolvers.base import Resolver
from filterdns.resolvers.cache import CacheResolver
from filterdns.resolvers.conditional import ConditionalResolver
from filterdns.resolvers.policy import ClientResolver, PolicyResolver
from filterdns.resolvers.querylog import QueryLogResolver
from filterdns.resolvers.upstream import UpstreamResolver
from filterdns.server import DnsServer
from filterdns.store import QueryLog
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
    config: Config,
    transport: Transport,
    clock: Callable[[], float] = time.monotonic,
    *,
    policy: Policy | None = None,
    directory: ClientDirectory | None = None,
    wall_clock: Callable[[], float] = time.time,
    querylog: QueryLog | None = None,
    alerter: Alerter | None = None,
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
    if policy is not None and directory is not None:
        # policy: above the cache, so a schedule change applies on the very next query and one
        # cache serves every profile; SafeSearch targets are resolved through the cache.
        head = PolicyResolver(head, policy, config.blocking, clock=wall_clock)
        # querylog: between client and policy, so each blocked lookup is recorded with who asked
        # and why; only a put_nowait on the hot path. Blocked lookups also feed the alerts.
        if querylog is not None:
            head = QueryLogResolver(
                head,
                querylog.put,
                log_allowed=config.log.log_allowed,
                observe=alerter.observe if alerter is not None else None,
                clock=wall_clock,
            )
        # client: who is asking decides the profile the policy applies.
        head = ClientResolver(head, directory)
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
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.transport = transport or Transport()
        self.lists = ListSet(config.lists, config.categories)
        self.grants = GrantStore(grants_path(config.log.database))
        has_macs = any(client.mac for client in config.clients)
        self.neighbours = Neighbours() if has_macs else None
        rules = [ClientRule(c.name, c.profile, c.ip, c.cidr, c.mac) for c in config.clients]
        self.directory = ClientDirectory(rules, config.default_profile, self.neighbours)
        lists = self.lists
        self.policy = Policy(config, lambda: lists.index, self.grants.current)
        self.querylog = QueryLog(config.log, clock=wall_clock)
        self.alerter = Alerter(
            [AlertRule.of(rule) for rule in config.alerts],
            record=self.querylog.put_alert,
            clock=wall_clock,
        )
        self.chain = build_chain(
            config,
            self.transport,
            clock,
            policy=self.policy,
            directory=self.directory,
            wall_clock=wall_clock,
            querylog=self.querylog,
            alerter=self.alerter,
        )
        self.server = DnsServer(self.chain.head, config.server)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> list[ListenAddress]:
        """Load the category index, then bind the listeners; returns the addresses bound.

        The index is loaded before the first query is answered so that nothing is ever served
        unfiltered; when no source changed since the last run it is mapped from disk at once.
        Remote sources are then kept fresh in the background.
        """
        try:
            await self.lists.load()
            await self.querylog.start()
            self.grants.reload_if_changed()
            if self.neighbours is not None:
                await self.neighbours.refresh()
            bound = await self.server.start(skip_unavailable=self.config.source is None)
        except BaseException:
            await self.stop()  # a port in use: close the log, lists and sockets opened so far
            raise
        self._tasks = [
            asyncio.create_task(self.lists.run(), name="lists-refresh"),
            asyncio.create_task(self.grants.watch(), name="grants-watch"),
        ]
        if self.neighbours is not None:
            self._tasks.append(asyncio.create_task(self.neighbours.run(), name="neighbours"))
        return bound

    async def stop(self) -> None:
        """Finish in-flight queries (bounded wait), then close every socket and task."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.server.stop()
        await self.alerter.close()
        await self.querylog.close()  # every queued row is written before exit
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
