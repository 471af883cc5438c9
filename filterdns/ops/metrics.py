"""Prometheus metrics: counters and histograms kept in plain dicts, rendered as text.

The hot path (`Metrics.observe`, called by the metrics link for every query) is one dict update
keyed by a label tuple and one `bisect` into the bucket bounds; nothing is formatted until a
scrape. `render` writes the text exposition format 0.0.4 by hand. Values that already live
elsewhere (cache counters, log queue depth, list sizes) are not copied here: a `gauges` callback
reads them at scrape time (`ops.gauges` builds them from the running components).

The endpoint is off by default: the web server (web/server.py, aiohttp on the proxy's loop) serves
`GET /metrics` on `server.metrics` without a token, and on `web.listen` with a parent's token.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable

from filterdns.dns.model import Request, Response

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip

Gauge = tuple[str, str, dict[str, str], float]  # name, help, labels, value
# Metrics.state(): queries by (kind, profile, category), the duration histogram (counts, sum),
# upstream histograms by server, upstream failures by server.
State = tuple[
    dict[tuple[str, str, str], int],
    tuple[list[int], float],
    dict[str, tuple[list[int], float]],
    dict[str, int],
]
Gauges = Callable[[], Iterable[Gauge]]

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_LABEL_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})
_HELP_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n"})


def escape_label(value: str) -> str:
    """A label value as the format writes it: backslash, double quote and newline escaped."""
    return value.translate(_LABEL_ESCAPES)


def format_value(value: float) -> str:
    """A sample value: integers without a point, +Inf/-Inf/NaN spelled as the format wants."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{name}="{escape_label(value)}"' for name, value in pairs)
    return "{" + inner + "}" if inner else ""


def _header(lines: list[str], name: str, help_text: str, kind: str) -> None:
    lines.append(f"# HELP {name} {help_text.translate(_HELP_ESCAPES)}")
    lines.append(f"# TYPE {name} {kind}")


class _Histogram:
    """Per-bucket counts (not cumulative; the last slot is above the largest bound) and sum."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1  # bound >= value: "le" semantics
        self.total += seconds

    def add(self, counts: list[int], total: float) -> None:
        """Add another histogram's counts and sum."""
        self.counts = [a + b for a, b in zip(self.counts, counts, strict=True)]
        self.total += total

    def render(self, lines: list[str], name: str, labels: tuple[tuple[str, str], ...]) -> None:
        running = 0
        for bound, count in zip(BUCKETS, self.counts, strict=False):
            running += count
            lines.append(f"{name}_bucket{_labels((*labels, ('le', repr(bound))))} {running}")
        running += self.counts[-1]
        lines.append(f"{name}_bucket{_labels((*labels, ('le', '+Inf')))} {running}")
        lines.append(f"{name}_sum{_labels(labels)} {format_value(self.total)}")
        lines.append(f"{name}_count{_labels(labels)} {running}")


class Metrics:
    """Counters and histograms of the proxy, rendered in the Prometheus text format."""

    def __init__(self) -> None:
        self._queries: dict[tuple[str, str, str], int] = {}  # (kind, profile, category)
        self._duration = _Histogram()
        self._upstream_duration: dict[str, _Histogram] = {}
        self._upstream_failures: dict[str, int] = {}
        self._reloads = {"applied": 0, "rejected": 0, "held": 0}

    def observe(self, request: Request, response: Response, seconds: float) -> None:
        """Count one answered query and its duration (the hot path: keep it short)."""
        key = (response.kind.value, request.profile or "", response.category or "")
        queries = self._queries
        queries[key] = queries.get(key, 0) + 1
        duration = self._duration
        duration.counts[bisect_left(BUCKETS, seconds)] += 1
        duration.total += seconds

    def upstream(self, server: str, seconds: float | None, ok: bool) -> None:
        """One exchange with `server`: its duration when known, and whether it failed."""
        if seconds is not None:
            histogram = self._upstream_duration.get(server)
            if histogram is None:
                histogram = self._upstream_duration[server] = _Histogram()
            histogram.observe(seconds)
        failures = self._upstream_failures.get(server, 0)
        self._upstream_failures[server] = failures if ok else failures + 1

    def state(self) -> State:
        """The counts as plain values, for another process to add (`add`): a worker's."""
        return (
            dict(self._queries),
            (list(self._duration.counts), self._duration.total),
            {s: (list(h.counts), h.total) for s, h in self._upstream_duration.items()},
            dict(self._upstream_failures),
        )

    def add(self, state: State) -> None:
        """Add the counts of another process (`state`) to these."""
        queries, duration, upstream_duration, failures = state
        for key, count in queries.items():
            self._queries[key] = self._queries.get(key, 0) + count
        self._duration.add(*duration)
        for server, (counts, total) in upstream_duration.items():
            histogram = self._upstream_duration.get(server)
            if histogram is None:
                histogram = self._upstream_duration[server] = _Histogram()
            histogram.add(counts, total)
        for server, count in failures.items():
            self._upstream_failures[server] = self._upstream_failures.get(server, 0) + count

    def copy(self) -> Metrics:
        """A copy of these counts (the reloads too), to add others' to."""
        other = Metrics()
        other.add(self.state())
        other._reloads = dict(self._reloads)
        return other

    def reload(self, result: str) -> None:
        """One configuration reload: "applied", "rejected" (invalid) or "held" (held back by
        the file watch because it weakens protection)."""
        self._reloads[result] += 1

    def render(self, gauges: Gauges | None = None) -> str:
        """Every metric in the text exposition format 0.0.4, then the values of `gauges`.

        `gauges` yields (name, help, labels, value) at scrape time. A name ending in `_total`
        is typed `counter` (cache hits, log drops: counted elsewhere), any other `gauge`. HELP
        and TYPE are written once per name, samples of one name are grouped together; the help
        of a name's first sample is used. Raises ValueError on an invalid metric or label name,
        or a name that clashes with one of the built-in metrics.
        """
        lines: list[str] = []
        name = "filterdns_queries_total"
        _header(lines, name, "Queries answered, by kind, profile and category.", "counter")
        for (kind, profile, category), count in sorted(self._queries.items()):
            pairs = (("kind", kind), ("profile", profile), ("category", category))
            lines.append(f"{name}{_labels(pairs)} {count}")

        name = "filterdns_query_duration_seconds"
        _header(lines, name, "Time from a query entering the chain to its answer.", "histogram")
        self._duration.render(lines, name, ())

        name = "filterdns_upstream_duration_seconds"
        _header(lines, name, "Round-trip time of exchanges with each upstream.", "histogram")
        for server, histogram in sorted(self._upstream_duration.items()):
            histogram.render(lines, name, (("server", server),))

        name = "filterdns_upstream_failures_total"
        _header(lines, name, "Failed exchanges with each upstream.", "counter")
        for server, count in sorted(self._upstream_failures.items()):
            lines.append(f"{name}{_labels((('server', server),))} {count}")

        name = "filterdns_reloads_total"
        _header(lines, name, "Configuration reloads, by result.", "counter")
        for result, count in self._reloads.items():
            lines.append(f"{name}{_labels((('result', result),))} {count}")

        if gauges is not None:
            _render_gauges(lines, gauges())
        return "\n".join(lines) + "\n"


_BUILT_IN = frozenset({
    "filterdns_queries_total", "filterdns_query_duration_seconds",
    "filterdns_upstream_duration_seconds", "filterdns_upstream_failures_total",
    "filterdns_reloads_total",
})  # fmt: skip


def _render_gauges(lines: list[str], gauges: Iterable[Gauge]) -> None:
    grouped: dict[str, tuple[str, list[str]]] = {}
    for name, help_text, labels, value in gauges:
        if not _NAME.match(name) or name in _BUILT_IN:
            raise ValueError(f"invalid or reserved metric name {name!r}")
        for label in labels:
            if not _LABEL.match(label) or label.startswith("__"):
                raise ValueError(f"invalid label name {label!r} of metric {name}")
        entry = grouped.get(name)
        if entry is None:
            entry = grouped[name] = (help_text, [])
        entry[1].append(f"{name}{_labels(sorted(labels.items()))} {format_value(value)}")
    for name, (help_text, samples) in grouped.items():
        _header(lines, name, help_text, "counter" if name.endswith("_total") else "gauge")
        lines.extend(samples)
