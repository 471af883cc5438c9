"""Every link answers alike through `resolve_now` and `resolve` (the contract in resolvers/base.py).

For each link, in each state that matters to it, two twins are built the same way. One is asked
`resolve_now`, the other `resolve`. When `resolve_now` has the answer, `resolve` gives an equal
one and both twins leave the same traces (counters, log rows, metrics, what the links below were
asked). When it has none, it leaves no trace at all, and the `resolve` that follows (as in the
server) answers and leaves exactly what `resolve` alone does.
"""

from __future__ import annotations

import importlib
import ipaddress
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import dns.message
import dns.opcode
import dns.rrset
import pytest

import filterdns.resolvers
from filterdns.config import CacheConfig, ClientConfig, default_config, load_config_text
from filterdns.config.values import parse_client_ip
from filterdns.dns import names, replies, wire
from filterdns.dns.model import Kind, Request, Response, servfail
from filterdns.lists.index import DomainIndex
from filterdns.policy.answers import AnswerJudge
from filterdns.policy.clients import ClientDirectory
from filterdns.policy.decisions import Policy
from filterdns.querylog.store import LogRecord
from filterdns.resolvers.access import AccessResolver
from filterdns.resolvers.base import Link, Resolver
from filterdns.resolvers.cache import CacheResolver
from filterdns.resolvers.client import ClientResolver
from filterdns.resolvers.conditional import ConditionalResolver
from filterdns.resolvers.local import LocalAnswerResolver
from filterdns.resolvers.localrecords import LocalRecordsResolver
from filterdns.resolvers.metrics import MetricsResolver
from filterdns.resolvers.policy import PolicyResolver
from filterdns.resolvers.querylog import QueryLogResolver
from tests.integration.harness import FakeClock
from tests.unit.test_upstream import A, ScriptedTransport, resolver

NOW = 1_790_000_000.0  # wall clock of the policy and the log
KID = "kid"
POLICY = """\
profiles:
  kid: {age_band: adult, block: [blocked.example], safesearch: true}
default_profile: kid
"""
NETS = [ipaddress.ip_network(n) for n in ("127.0.0.0/8", "192.168.0.0/16")]
A_RECORD = "{name}. 300 IN A 93.184.216.34"


def _request(
    name: str = "example.com",
    qtype: str = "A",
    *,
    ip: str = "192.168.1.7",
    protocol: str = "udp",
    profile: str | None = KID,
    opcode: int = 0,
    edns: int | None = None,
) -> Request:
    message = dns.message.make_query(name, qtype, use_edns=edns, id=1)
    message.set_opcode(dns.opcode.Opcode(opcode))
    query = wire.parse_query(message.to_wire())
    return Request(query, ip, 5353, protocol, 0.0, profile)


def _answer(request: Request, *lines: str, rcode: int = wire.NOERROR) -> wire.Answer:
    """An upstream reply to `request` holding `lines` (zone file lines), analysed as one is."""
    query = request.query
    message = dns.message.make_response(dns.message.make_query(query.qname, query.qtype, id=2))
    message.set_rcode(rcode)
    for line in lines:
        name, ttl, rdclass, rdtype, *rdata = line.format(name=query.qname).split()
        message.answer.append(dns.rrset.from_text(name, int(ttl), rdclass, rdtype, *rdata))
    return replies.analyse(message.to_wire())


def resolved(request: Request) -> Response:
    """What the upstreams answer by default: one A record."""
    return Response(Kind.RESOLVED, _answer(request, A_RECORD), reason="answered by a test")


def cloaked(request: Request) -> Response:
    """An answer leading to a name the profile blocks (CNAME cloaking)."""
    lines = ("{name}. 300 IN CNAME blocked.example.", "blocked.example. 300 IN A 192.0.2.1")
    return Response(Kind.RESOLVED, _answer(request, *lines))


def rebinding(request: Request) -> Response:
    """A public name answered with a private address (DNS rebinding)."""
    return Response(Kind.RESOLVED, _answer(request, "{name}. 300 IN A 192.168.1.1"))


def blocked(request: Request) -> Response:
    """A block decided somewhere below (as the policy answers one)."""
    return Response(Kind.BLOCKED, _answer(request, rcode=wire.NXDOMAIN), category="games")


def failed(request: Request) -> Response:
    """Every upstream failed."""
    return servfail(request.query, "every upstream timed out")


class Below:
    """The links below the one under test: `answer` each request, at once when `ready`, and
    note what was asked (name, profile, client name) — only when answering, as a link must."""

    def __init__(self, ready: bool, answer: Callable[[Request], Response] = resolved) -> None:
        self.ready = ready
        self.answer = answer
        self.seen: list[tuple[str, str | None, str | None]] = []

    async def resolve(self, request: Request) -> Response:
        self.seen.append((request.query.qname, request.profile, request.client_name))
        return self.answer(request)

    def resolve_now(self, request: Request) -> Response | None:
        return None if not self.ready else self.answer_now(request)

    def answer_now(self, request: Request) -> Response:
        self.seen.append((request.query.qname, request.profile, request.client_name))
        return self.answer(request)


@dataclass
class Twin:
    """One link built for a test, what it left behind so far, and how to close it."""

    sut: Resolver
    trace: Callable[[], object]
    closing: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


Make = Callable[[], Awaitable[Twin]]


def access(ready: bool) -> Make:
    async def make() -> Twin:
        below = Below(ready)
        sut = AccessResolver(below, NETS)
        return Twin(sut, lambda: (sut.refused, below.seen))

    return make


def local(ready: bool) -> Make:
    async def make() -> Twin:
        below = Below(ready)
        return Twin(LocalAnswerResolver(below), lambda: below.seen)

    return make


LOCAL_RECORDS = """\
local_records: {printer.school.lan: 10.6.0.5, intranet.school.lan: {cname: printer.school.lan}}
"""


def local_records(ready: bool) -> Make:
    async def make() -> Twin:
        config = load_config_text(LOCAL_RECORDS, defaults=default_config(is_root=False))
        below = Below(ready)
        sut = LocalRecordsResolver(below, Policy(config, DomainIndex.empty).local)
        return Twin(sut, lambda: below.seen)

    return make


def client(ready: bool) -> Make:
    async def make() -> Twin:
        below = Below(ready)
        rules = [ClientConfig("tablet", "teen", ip=parse_client_ip("192.168.1.7"))]
        return Twin(ClientResolver(below, ClientDirectory(rules, KID)), lambda: below.seen)

    return make


class Observed:
    """The counters the metrics link reports to, minus the durations (they differ)."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, str | None, Kind]] = []

    def observe(self, request: Request, response: Response, seconds: float) -> None:
        self.answers.append((request.query.qname, request.profile, response.kind))

    def upstream(self, server: str, seconds: float | None, ok: bool) -> None:
        raise AssertionError("the metrics link never counts exchanges")


def metrics(ready: bool) -> Make:
    async def make() -> Twin:
        below, counts = Below(ready), Observed()
        return Twin(MetricsResolver(below, counts), lambda: (counts.answers, below.seen))

    return make


def querylog(ready: bool, answer: Callable[[Request], Response], log_allowed: bool) -> Make:
    async def make() -> Twin:
        below = Below(ready, answer)
        rows: list[LogRecord] = []
        alerts: list[LogRecord] = []

        def sink(row: LogRecord) -> bool:
            rows.append(row)
            return True

        sut = QueryLogResolver(
            below, sink, observe=alerts.append, log_allowed=log_allowed, clock=lambda: NOW
        )
        return Twin(sut, lambda: (rows, alerts, below.seen))

    return make


def policy(ready: bool, answer: Callable[[Request], Response] = resolved) -> Make:
    async def make() -> Twin:
        config = load_config_text(POLICY, source="<test>", defaults=default_config(is_root=False))
        rules = Policy(config, DomainIndex.empty)
        below = Below(ready, answer)
        judge = AnswerJudge(config, rules)
        sut = PolicyResolver(below, rules, config.blocking, judge, clock=lambda: NOW)
        return Twin(sut, lambda: below.seen)

    return make


def cache(state: str, **config: Any) -> Make:
    """A cache that answered example.com at t=1000 (unless `state` is "empty"), now at `state`:
    "fresh" (10 s later), "popular-near-end" (asked twice, 5 s before expiry: prefetched),
    "stale" (expired 100 s ago, the upstreams failing), "dead" (past the stale window)."""

    async def make() -> Twin:
        clock = FakeClock(1000.0)
        below = Below(False)
        sut = CacheResolver(below, CacheConfig(**config), clock=clock)
        if state != "empty":
            await sut.resolve(_request())
        if state == "popular-near-end":
            clock.now += 200
            sut.resolve_now(_request())
            sut.resolve_now(_request())
        clock.now += {"fresh": 10, "popular-near-end": 95, "stale": 400, "dead": 4000}.get(state, 0)
        if state in ("stale", "dead"):
            below.answer = failed
        stats = sut.stats
        return Twin(
            sut,
            lambda: (
                (stats.hits, stats.misses, stats.stale_served, stats.prefetches, stats.evictions),
                below.seen,
            ),
            [sut.close],
        )

    return make


def conditional(ready: bool) -> Make:
    async def make() -> Twin:
        below, router = Below(ready), Below(ready)
        sut = ConditionalResolver(below, [("home.arpa", router)])
        return Twin(sut, lambda: (below.seen, router.seen))

    return make


async def one_address(qname_wire: bytes, qtype: int) -> bytes:
    """The upstream server: one A record for any name, in the same message every time."""
    return resolved(_request(names.name_to_text(qname_wire))).answer.wire


def upstream() -> Make:
    async def make() -> Twin:
        transport = ScriptedTransport({A: one_address})
        return Twin(resolver(transport, A), transport.asked)

    return make


CASES = [
    # (link, request, whether resolve_now answers)
    pytest.param(access(True), _request(), True, id="access-allowed-below-ready"),
    pytest.param(access(False), _request(), False, id="access-allowed-below-waits"),
    pytest.param(access(False), _request(ip="203.0.113.9"), True, id="access-refused-udp"),
    pytest.param(
        access(False), _request(ip="203.0.113.9", protocol="tcp"), True, id="access-refused-tcp"
    ),
    pytest.param(local(False), _request(qtype="ANY"), True, id="local-any"),
    pytest.param(local(False), _request(opcode=2), True, id="local-notimp"),
    pytest.param(local(False), _request(edns=1), True, id="local-badvers"),
    pytest.param(local(True), _request(), True, id="local-passes-below-ready"),
    pytest.param(local(False), _request(), False, id="local-passes-below-waits"),
    pytest.param(local_records(False), _request("printer.school.lan"), True, id="records-a"),
    pytest.param(
        local_records(False), _request("Intranet.School.LAN."), True, id="records-cname-chain"
    ),
    pytest.param(local_records(False), _request("printer.school.lan", "MX"), True, id="records-mx"),
    pytest.param(
        local_records(False), _request("5.0.6.10.in-addr.arpa", "PTR"), True, id="records-ptr"
    ),
    pytest.param(local_records(True), _request(), True, id="records-passes-below-ready"),
    pytest.param(local_records(False), _request(), False, id="records-passes-below-waits"),
    pytest.param(client(True), _request(profile=None), True, id="client-named-below-ready"),
    pytest.param(client(False), _request(profile=None), False, id="client-named-below-waits"),
    pytest.param(client(True), _request(ip="192.168.1.8", profile=None), True, id="client-default"),
    pytest.param(metrics(True), _request(), True, id="metrics-below-ready"),
    pytest.param(metrics(False), _request(), False, id="metrics-below-waits"),
    pytest.param(
        querylog(True, blocked, False), _request(), True, id="querylog-blocked-below-ready"
    ),
    pytest.param(
        querylog(False, blocked, False), _request(), False, id="querylog-blocked-below-waits"
    ),
    pytest.param(querylog(True, resolved, False), _request(), True, id="querylog-allowed"),
    pytest.param(querylog(True, resolved, True), _request(), True, id="querylog-log-allowed"),
    pytest.param(policy(False), _request("blocked.example"), True, id="policy-blocked"),
    pytest.param(policy(True), _request(), True, id="policy-allowed-below-ready"),
    pytest.param(policy(False), _request(), False, id="policy-allowed-below-waits"),
    pytest.param(policy(True, cloaked), _request(), True, id="policy-cname-cloaking"),
    pytest.param(policy(False, cloaked), _request(), False, id="policy-cname-cloaking-waits"),
    pytest.param(policy(True, rebinding), _request(), True, id="policy-rebinding"),
    pytest.param(
        policy(True), _request("www.google.com"), True, id="policy-safesearch-below-ready"
    ),
    pytest.param(
        policy(False), _request("www.google.com"), False, id="policy-safesearch-below-waits"
    ),
    pytest.param(cache("empty"), _request(), False, id="cache-miss"),
    pytest.param(cache("fresh"), _request(), True, id="cache-hit"),
    pytest.param(cache("popular-near-end"), _request(), True, id="cache-hit-prefetch"),
    pytest.param(cache("stale"), _request(), False, id="cache-stale"),
    pytest.param(cache("dead", serve_stale=60.0), _request(), False, id="cache-past-stale"),
    pytest.param(cache("fresh", max_entries=0), _request(), False, id="cache-off"),
    pytest.param(conditional(True), _request("printer.home.arpa"), False, id="conditional"),
    pytest.param(conditional(True), _request(), False, id="conditional-elsewhere"),
    pytest.param(upstream(), _request(), False, id="upstream"),
]


@pytest.mark.parametrize(("make", "request_", "answers_now"), CASES)
async def test_resolve_now_and_resolve_agree(
    make: Make, request_: Request, answers_now: bool
) -> None:
    now, later = await make(), await make()
    untouched = repr(now.trace())
    try:
        ready = now.sut.resolve_now(request_)
        assert (ready is not None) is answers_now
        if ready is None:
            assert repr(now.trace()) == untouched  # no trace: `resolve` sees the request next
            ready = await now.sut.resolve(request_)
        assert await later.sut.resolve(request_) == ready
        assert repr(now.trace()) == repr(later.trace())
    finally:
        for twin in (now, later):
            for close in twin.closing:
                await close()


async def test_every_link_is_in_the_table() -> None:
    covered = set()
    for case in CASES:
        twin = await case.values[0]()
        covered.add(type(twin.sut))
        for close in twin.closing:
            await close()
    links = set()
    for info in pkgutil.iter_modules(filterdns.resolvers.__path__):
        module = importlib.import_module(f"filterdns.resolvers.{info.name}")
        links |= {
            kind
            for kind in vars(module).values()
            if isinstance(kind, type)
            and kind.__module__ == module.__name__
            and hasattr(kind, "resolve_now")
        }
    assert links - {Link, Resolver} == covered
