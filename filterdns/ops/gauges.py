"""The gauges of a scrape: what the running components report, read when /metrics is asked.

Values that live in the components (cache counters, log queue depth, upstream health, list
sizes, TCP connections) are never copied into `Metrics`; these functions turn them into
(name, help, labels, value) rows for `Metrics.render(gauges=...)` at each scrape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from filterdns.dns.tcpslots import TcpSlots
from filterdns.ops.metrics import Gauge
from filterdns.querylog.store import QueryLog
from filterdns.resolvers.cache import CacheStats
from filterdns.resolvers.upstream import Health, Outstanding


def component_gauges(
    *,
    cache: CacheStats | None = None,
    query_log: QueryLog | None = None,
    upstreams: Mapping[str, Health] | None = None,
    list_sizes: Mapping[str, int] | None = None,
    list_rejected: Mapping[tuple[str, str], bool] | None = None,
    lists_ready: bool | None = None,
    outstanding: Outstanding | None = None,
) -> list[Gauge]:
    """The scrape-time values of the running components, for `Metrics.render(gauges=...)`.

    `list_sizes` maps a category to the number of names its lists hold; `list_rejected` a
    (category, source) to whether its content was rejected (its last good copy serves);
    `lists_ready` says whether the index of the configured sources serves yet; `outstanding`
    counts the exchanges in flight to the upstreams and the queries its caps turned away.
    """
    out: list[Gauge] = []
    if cache is not None:
        out += [
            ("filterdns_cache_hits_total", "Answers served from the cache.", {}, cache.hits),
            ("filterdns_cache_misses_total", "Queries the cache could not answer.", {},
             cache.misses),
            ("filterdns_cache_stale_served_total", "Expired answers served (RFC 8767).", {},
             cache.stale_served),
            ("filterdns_cache_prefetches_total", "Entries refreshed before expiry.", {},
             cache.prefetches),
            ("filterdns_cache_evictions_total", "Entries evicted to stay within size.", {},
             cache.evictions),
            ("filterdns_cache_entries", "Answers held in the cache.", {}, cache.entries),
        ]  # fmt: skip
    if query_log is not None:
        depth = query_log.depth
        out += [
            ("filterdns_log_queue_depth", "Lookups waiting to be written to the query log.", {},
             depth),
            ("filterdns_log_written_total", "Lookups written to the query log.", {},
             query_log.stats.written),
            ("filterdns_log_dropped_total", "Lookups the query log lost.", {},
             query_log.stats.dropped),
        ]  # fmt: skip
    for server, health in sorted((upstreams or {}).items()):
        if health.rtt is not None:
            out.append((
                "filterdns_upstream_rtt_seconds", "Smoothed round-trip time of each upstream.",
                {"server": server}, health.rtt,
            ))  # fmt: skip
        out.append((
            "filterdns_upstream_consecutive_failures", "Failures since the last answer.",
            {"server": server}, health.failures,
        ))  # fmt: skip
    if outstanding is not None:
        out += _outstanding_gauges(outstanding, upstreams or {})
    for category, size in sorted((list_sizes or {}).items()):
        out.append((
            "filterdns_list_names", "Names held by the blocklists of each category.",
            {"category": category}, size,
        ))  # fmt: skip
    for (category, source), rejected in sorted((list_rejected or {}).items()):
        out.append((
            "filterdns_list_rejected",
            "1 when a list source was rejected (not text, empty, mostly invalid or shrunk too "
            "much); its last good copy, if any, serves instead.",
            {"category": category, "source": source}, float(rejected),
        ))  # fmt: skip
    if lists_ready is not None:
        out.append((
            "filterdns_lists_ready",
            "1 once the index of the configured list sources serves; 0 while the previous "
            "index or the shipped lists serve during its first build.",
            {}, float(lists_ready),
        ))  # fmt: skip
    return out


def _outstanding_gauges(outstanding: Outstanding, upstreams: Mapping[str, Health]) -> list[Gauge]:
    by_server = {str(server): count for server, count in outstanding.by_server.items()}
    out: list[Gauge] = [
        ("filterdns_upstream_outstanding",
         "Exchanges in flight to the upstreams (at most upstreams.max_outstanding).", {},
         outstanding.in_flight),
        ("filterdns_upstream_joined",
         "Queries waiting on the exchange of an identical query in flight.", {},
         outstanding.joined),
        ("filterdns_upstream_overflow_total",
         "Queries answered at once with stale data or SERVFAIL, without asking an upstream, "
         "because upstreams.max_outstanding or max_outstanding_per_server was reached.", {},
         outstanding.overflowed),
    ]  # fmt: skip
    for server in sorted({*upstreams, *by_server}):  # every configured server, even at 0
        out.append((
            "filterdns_upstream_server_outstanding",
            "Exchanges in flight to each upstream (at most upstreams.max_outstanding_per_server).",
            {"server": server}, by_server.get(server, 0),
        ))  # fmt: skip
    return out


def tcp_gauges(slots: TcpSlots[Any]) -> list[Gauge]:
    """Open TCP client connections, and the ones refused or closed to keep the caps."""
    refused = "TCP client connections closed at once, by the cap they met."
    return [
        ("filterdns_tcp_connections", "Open TCP client connections.", {}, len(slots)),
        ("filterdns_tcp_refused_total", refused, {"cap": "per_client"}, slots.refused_per_client),
        ("filterdns_tcp_refused_total", refused, {"cap": "total"}, slots.refused_full),
        ("filterdns_tcp_evicted_total",
         "TCP connections closed to make room for a client holding fewer, when all were taken.",
         {}, slots.evicted),
    ]  # fmt: skip


# Gauges of several processes (workers) are added up, except these: a round-trip time is
# averaged, a run of failures is the longest one.
_AVERAGED = frozenset({"filterdns_upstream_rtt_seconds"})
_LONGEST = frozenset({"filterdns_upstream_consecutive_failures"})


def merge_gauges(groups: Iterable[Iterable[Gauge]]) -> list[Gauge]:
    """One row per name and labels from the gauges of several processes (workers)."""
    merged: dict[tuple[str, tuple[tuple[str, str], ...]], list[Any]] = {}
    for gauges in groups:
        for name, help_text, labels, value in gauges:
            key = (name, tuple(sorted(labels.items())))
            row = merged.get(key)
            if row is None:
                merged[key] = [help_text, labels, value, 1]
            elif name in _LONGEST:
                row[2] = max(row[2], value)
            else:
                row[2] += value
                row[3] += 1
    return [
        (name, help_text, labels, total / seen if name in _AVERAGED else total)
        for (name, _), (help_text, labels, total, seen) in merged.items()
    ]
