"""The chain of links every query goes down, assembled in one place, top-down.

`build_chain` lists the links in the order a query meets them, each with why it sits there; a
link is built over the links listed below it, so the last one listed (the upstreams) is built
first. `build_forwarder` is the bottom of the chain alone (conditional routes, then the
upstreams), for `filterdns explain`, which asks the upstreams itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from filterdns.config import Config, UpstreamServer
from filterdns.policy.answers import AnswerJudge
from filterdns.policy.clients import ClientDirectory
from filterdns.policy.decisions import Policy
from filterdns.querylog.alerts import Alerter
from filterdns.querylog.store import QueryLog
from filterdns.resolvers import answermemo
from filterdns.resolvers.access import AccessResolver
from filterdns.resolvers.answermemo import MemoHooks, Probe
from filterdns.resolvers.base import Resolver
from filterdns.resolvers.cache import CacheResolver
from filterdns.resolvers.client import ClientResolver
from filterdns.resolvers.conditional import ConditionalResolver
from filterdns.resolvers.local import LocalAnswerResolver
from filterdns.resolvers.localrecords import LocalRecordsResolver
from filterdns.resolvers.metrics import Counts, MetricsResolver
from filterdns.resolvers.policy import PolicyResolver
from filterdns.resolvers.querylog import QueryLogResolver
from filterdns.resolvers.upstream import Exchanger, Outstanding, UpstreamResolver

Wrap = Callable[[Resolver], Resolver]  # builds a link over the links below it
L = TypeVar("L")


@dataclass(frozen=True, slots=True)
class Chain:
    """The links of the request path, top-down: `head` first, the upstream link last."""

    links: tuple[Resolver, ...]

    @property
    def head(self) -> Resolver:
        """Where the server hands every query."""
        return self.links[0]

    @property
    def access(self) -> AccessResolver:
        """The ACL link (it counts refusals)."""
        return self.link(AccessResolver)

    @property
    def cache(self) -> CacheResolver:
        """The cache link (a reload hands it to the next chain)."""
        return self.link(CacheResolver)

    @property
    def upstream(self) -> UpstreamResolver:
        """The terminal link (it keeps the health of each upstream server)."""
        return self.link(UpstreamResolver)

    def link(self, kind: type[L]) -> L:
        """The first link of type `kind`."""
        for link in self.links:
            if isinstance(link, kind):
                return link
        raise LookupError(f"no {kind.__name__} in the chain")


def build_chain(
    config: Config,
    transport: Exchanger,
    *,
    directory: ClientDirectory,
    policy: Policy,
    querylog: QueryLog,
    alerter: Alerter,
    metrics: Counts | None,
    outstanding: Outstanding,
    cache: CacheResolver | None,
    clock: Callable[[], float],
    wall_clock: Callable[[], float],
) -> Chain:
    """The request path, top-down, as a query meets the links.

    `cache` is the cache of the chain this one replaces (a reload keeps every cached answer and
    hands the cache the new settings), or None for a new one; `metrics` is None without
    `server.metrics`; `outstanding` holds the caps on exchanges in flight, kept across reloads.
    """
    on_exchange = None if metrics is None else metrics.upstream
    upstream, conditional = forwarding_links(config, transport, outstanding, on_exchange)
    judge = AnswerJudge(config, policy)
    log_allowed = config.log.log_allowed
    probe = Probe()  # the policy and cache links tell the server's answer memo what decided
    links = _linked(
        # access: first, so nobody outside server.allow_clients reaches anything (no open resolver).
        lambda below: AccessResolver(below, config.server.allow_clients),
        # local: ANY (RFC 8482), NOTIMP, BADVERS; nothing below needs to see those.
        LocalAnswerResolver,
        # client: who is asking decides the profile that every link below applies or records.
        lambda below: ClientResolver(below, directory),
        # metrics: right below the client link, so every answer is counted with its profile;
        # left out without server.metrics, where no scraper reads what it would time.
        None if metrics is None else lambda below: MetricsResolver(below, metrics),
        # querylog: between client and policy, so each blocked lookup is recorded with who asked
        # and why; only an append to a bounded queue on the hot path. Blocked lookups also feed
        # the alerts.
        lambda below: QueryLogResolver(
            below, querylog.put, observe=alerter.observe, log_allowed=log_allowed, clock=wall_clock
        ),
        # local records: below the client, metrics and log links (counted and logged with the
        # profile that asked), above the policy (step 3: answered as configured for every
        # profile, before any blocking) and the cache (ready bytes; upstreams never asked).
        # Left out without `local_records:`.
        None if not policy.local else lambda below: LocalRecordsResolver(below, policy.local),
        # policy: above the cache, so a schedule change applies on the very next query and one
        # cache serves every profile; SafeSearch targets are resolved through the cache.
        lambda below: PolicyResolver(
            below, policy, config.blocking, judge, clock=wall_clock, probe=probe
        ),
        # cache: below the policy (see above); serves stale data when everything below fails.
        _cached(cache, config, clock, probe),
        # conditional: local suffixes (home.arpa, the LAN's reverse zone) go to the router;
        # below the cache so those answers are cached too. Left out without routes.
        conditional,
        # upstream: terminal; the configured resolvers, one deadline per query, coalesced.
        bottom=upstream,
    )
    chain = Chain(links)
    metrics_link = next((link for link in links if isinstance(link, MetricsResolver)), None)
    answermemo.register(
        chain.head,
        MemoHooks(
            probe=probe,
            access=chain.access,
            directory=directory,
            policy=policy,
            record=chain.link(QueryLogResolver).record,
            log_allowed=log_allowed,
            observe=None if metrics_link is None else metrics_link.observe,
            clock=clock,
            wall_clock=wall_clock,
        ),
    )
    return chain


def forwarding_links(
    config: Config,
    transport: Exchanger,
    outstanding: Outstanding,
    on_exchange: Callable[[str, float | None, bool], None] | None = None,
) -> tuple[UpstreamResolver, Wrap | None]:
    """The upstream link, and the conditional link over it when routes are configured (None
    without).

    Every upstream link shares one transport (and its TCP pool) and `outstanding`, so the caps
    on exchanges in flight hold across conditional routes and reloads.
    """
    up = config.upstreams

    def upstream_for(servers: Sequence[UpstreamServer], trust_ad: bool) -> UpstreamResolver:
        return UpstreamResolver(
            servers,
            strategy=up.strategy,
            timeout=up.timeout,
            backoff=up.backoff,
            transport=transport,
            on_exchange=on_exchange,
            outstanding=outstanding,
            trust_ad=trust_ad,
        )

    upstream = upstream_for(up.servers, up.trust_ad)
    if not up.conditional:
        return upstream, None
    # A router's answers for local names are not validated: their AD bit is never trusted.
    routes = [(suffix, upstream_for(servers, False)) for suffix, servers in up.conditional]
    return upstream, lambda below: ConditionalResolver(below, routes)


def _cached(
    kept: CacheResolver | None, config: Config, clock: Callable[[], float], probe: Probe
) -> Wrap:
    """A new cache over the links below, or the one a reload keeps, with the new settings;
    either way it reports to this chain's probe."""

    def wrap(below: Resolver) -> Resolver:
        cache = CacheResolver(below, config.cache, clock=clock) if kept is None else kept
        if kept is not None:
            kept.reconfigure(below, config.cache)
        cache.probe = probe
        return cache

    return wrap


def build_forwarder(config: Config, transport: Exchanger) -> Resolver:
    """The bottom of the chain alone: conditional routes, then the configured upstreams."""
    up = config.upstreams
    outstanding = Outstanding(up.max_outstanding, up.max_outstanding_per_server)
    upstream, conditional = forwarding_links(config, transport, outstanding)
    return _linked(conditional, bottom=upstream)[0]


def _linked(*wraps: Wrap | None, bottom: Resolver) -> tuple[Resolver, ...]:
    """The links top-down: `bottom`, and each wrap built over the ones below it (None: left
    out)."""
    links = [bottom]
    for wrap in reversed(wraps):
        if wrap is not None:
            links.append(wrap(links[-1]))
    links.reverse()
    return tuple(links)
