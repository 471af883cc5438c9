"""The gauges of a running App, read at each scrape (a reload's new objects are the ones
reported): its components' (cache, log, upstreams, lists, caps) and the server's counters.

With `server.workers` the workers answer: what answering counts (cache, upstreams, caps, the
server's counters) comes from each worker (`serving_gauges`, sent with its counts) and is added
up; the log and the lists are the main process's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from filterdns.ops.gauges import component_gauges, tcp_gauges
from filterdns.ops.metrics import Gauge

if TYPE_CHECKING:
    from filterdns.app.lifecycle import App
    from filterdns.dns.server import DnsServer
    from filterdns.resolvers.chain import Chain
    from filterdns.resolvers.upstream import Outstanding


def app_gauges(app: App) -> list[Gauge]:
    """Every gauge of `app` now."""
    sizes: dict[str, int] = {}
    for status in app.lists.sources:
        sizes[status.category] = sizes.get(status.category, 0) + status.report.entries
    gauges = component_gauges(
        query_log=app.querylog,
        list_sizes=sizes,
        list_rejected={
            (s.category, s.source): s.rejected is not None
            for s in app.lists.sources
            if s.kind != "shipped"
        },
        lists_ready=app.lists.ready.is_set(),
    )
    if app.workers is not None:
        return gauges + app.workers.gauges()
    return gauges + serving_gauges(app.chain, app.server, app.outstanding)


def serving_gauges(chain: Chain, server: DnsServer, outstanding: Outstanding) -> list[Gauge]:
    """What answering counts in one process: cache, upstreams, caps, the server's counters."""
    gauges = component_gauges(
        cache=chain.cache.stats,
        upstreams={str(s): h for s, h in chain.upstream.health.items()},
        outstanding=outstanding,
    )
    gauges.append(("filterdns_refused_total", REFUSED_HELP, {}, float(chain.access.refused)))
    stats = server.stats
    gauges.append(("filterdns_rate_limited_total", LIMITED_HELP, {}, stats["rate_limited"]))
    gauges.append(("filterdns_malformed_total", MALFORMED_HELP, {},
                   stats["formerr"] + stats["dropped"]))  # fmt: skip
    gauges.append(("filterdns_packets_total", PACKETS_HELP, {}, stats["queries"]))
    return gauges + tcp_gauges(server.tcp)


REFUSED_HELP = (
    "Queries refused (TCP) or dropped (UDP) because the client is outside server.allow_clients"
)
LIMITED_HELP = "Queries dropped (UDP) or refused (TCP) over server.rate_limit"
MALFORMED_HELP = "Packets answered FORMERR or dropped as malformed"
PACKETS_HELP = "UDP datagrams and TCP frames read from clients (within their rate limit)"
