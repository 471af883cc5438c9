"""The gauges of a running App, read at each scrape (a reload's new objects are the ones
reported): its components' (cache, log, upstreams, lists, caps) and the server's counters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from filterdns.ops.gauges import component_gauges, tcp_gauges
from filterdns.ops.metrics import Gauge

if TYPE_CHECKING:
    from filterdns.app.lifecycle import App


def app_gauges(app: App) -> list[Gauge]:
    """Every gauge of `app` now."""
    sizes: dict[str, int] = {}
    for status in app.lists.sources:
        sizes[status.category] = sizes.get(status.category, 0) + status.report.entries
    gauges = component_gauges(
        cache=app.chain.cache.stats,
        query_log=app.querylog,
        upstreams={str(s): h for s, h in app.chain.upstream.health.items()},
        list_sizes=sizes,
        list_rejected={
            (s.category, s.source): s.rejected is not None
            for s in app.lists.sources
            if s.kind != "shipped"
        },
        lists_ready=app.lists.ready.is_set(),
        outstanding=app.outstanding,
    )
    refused = app.chain.access.refused
    gauges.append(("filterdns_refused_total", REFUSED_HELP, {}, float(refused)))
    stats = app.server.stats
    gauges.append(("filterdns_rate_limited_total", LIMITED_HELP, {}, stats["rate_limited"]))
    gauges.append(("filterdns_malformed_total", MALFORMED_HELP, {},
                   stats["formerr"] + stats["dropped"]))  # fmt: skip
    gauges.append(("filterdns_packets_total", PACKETS_HELP, {}, stats["queries"]))
    return gauges + tcp_gauges(app.server.tcp)


REFUSED_HELP = (
    "Queries refused (TCP) or dropped (UDP) because the client is outside server.allow_clients"
)
LIMITED_HELP = "Queries dropped (UDP) or refused (TCP) over server.rate_limit"
MALFORMED_HELP = "Packets answered FORMERR or dropped as malformed"
PACKETS_HELP = "UDP datagrams and TCP frames read from clients (within their rate limit)"
