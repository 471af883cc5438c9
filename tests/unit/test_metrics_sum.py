"""/metrics with worker processes: each worker's counts added to the main process's, its gauges
added up (a round-trip time averaged, a run of failures the longest)."""

from __future__ import annotations

import dns.message

from filterdns.dns import wire
from filterdns.dns.model import Kind, Request, Response, error_answer
from filterdns.ops.gauges import merge_gauges
from filterdns.ops.metrics import Metrics


def observed(*answers: tuple[str, Kind, str | None, float]) -> Metrics:
    metrics = Metrics()
    for profile, kind, category, seconds in answers:
        query = wire.parse_query(dns.message.make_query("a.example.", "A").to_wire())
        request = Request(query, "127.0.0.1", 5000, "udp", 0.0, profile=profile)
        response = Response(kind, error_answer(query, wire.NOERROR), category=category)
        metrics.observe(request, response, seconds)
    return metrics


def lines(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_the_workers_counts_add_up_to_what_one_process_would_have_counted() -> None:
    first = observed(("minh", Kind.BLOCKED, "gambling", 0.001), ("minh", Kind.CACHED, None, 0.0))
    first.upstream("udp://192.0.2.1:53", 0.004, ok=True)
    second = observed(("minh", Kind.BLOCKED, "gambling", 0.3), ("lan", Kind.CACHED, None, 0.02))
    second.upstream("udp://192.0.2.1:53", None, ok=False)
    main = Metrics()
    main.reload("applied")
    combined = main.copy()
    combined.add(first.state())
    combined.add(second.state())

    alone = observed(
        ("minh", Kind.BLOCKED, "gambling", 0.001), ("minh", Kind.CACHED, None, 0.0),
        ("minh", Kind.BLOCKED, "gambling", 0.3), ("lan", Kind.CACHED, None, 0.02),
    )  # fmt: skip
    alone.upstream("udp://192.0.2.1:53", 0.004, ok=True)
    alone.upstream("udp://192.0.2.1:53", None, ok=False)
    alone.reload("applied")
    assert combined.render() == alone.render()
    text = combined.render()
    assert 'filterdns_queries_total{kind="blocked",profile="minh",category="gambling"} 2' in text
    assert "filterdns_query_duration_seconds_count 4" in text
    assert 'filterdns_reloads_total{result="applied"} 1' in text


def test_a_copy_leaves_the_main_process_counts_as_they_were() -> None:
    main = observed(("minh", Kind.BLOCKED, "adult", 0.001))
    combined = main.copy()
    combined.add(observed(("minh", Kind.BLOCKED, "adult", 0.001)).state())
    assert lines(main.render(), "filterdns_queries_total{") == [
        'filterdns_queries_total{kind="blocked",profile="minh",category="adult"} 1'
    ]
    assert lines(combined.render(), "filterdns_queries_total{") == [
        'filterdns_queries_total{kind="blocked",profile="minh",category="adult"} 2'
    ]


def test_gauges_of_the_workers_are_added_up_per_name_and_labels() -> None:
    up = {"server": "udp://192.0.2.1:53"}
    merged = merge_gauges([
        [("filterdns_cache_hits_total", "h", {}, 10), ("filterdns_cache_entries", "e", {}, 4),
         ("filterdns_upstream_rtt_seconds", "r", up, 0.002),
         ("filterdns_upstream_consecutive_failures", "f", up, 3),
         ("filterdns_tcp_refused_total", "t", {"cap": "total"}, 1)],
        [("filterdns_cache_hits_total", "h", {}, 5), ("filterdns_cache_entries", "e", {}, 6),
         ("filterdns_upstream_rtt_seconds", "r", up, 0.004),
         ("filterdns_upstream_consecutive_failures", "f", up, 1),
         ("filterdns_tcp_refused_total", "t", {"cap": "per_client"}, 2)],
    ])  # fmt: skip
    values = {(name, tuple(labels.items())): value for name, _, labels, value in merged}
    assert values == {
        ("filterdns_cache_hits_total", ()): 15,
        ("filterdns_cache_entries", ()): 10,
        ("filterdns_upstream_rtt_seconds", (("server", "udp://192.0.2.1:53"),)): 0.003,
        ("filterdns_upstream_consecutive_failures", (("server", "udp://192.0.2.1:53"),)): 3,
        ("filterdns_tcp_refused_total", (("cap", "total"),)): 1,
        ("filterdns_tcp_refused_total", (("cap", "per_client"),)): 2,
    }
