"""The cache link: hits, decaying TTLs, clamps, LRU, serve-stale and prefetch, on a fake clock."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from filterdns.config import CacheConfig, default_config
from filterdns.dns import replies, wire
from filterdns.dns.model import Kind, Request, Response, servfail
from filterdns.dns.names import text_to_wire
from filterdns.resolvers.cache import STALE_TTL, CacheResolver

A_300 = ("example.com. 300 IN A 93.184.216.34",)
SOA = "example.com. 3600 IN SOA ns.example.com. admin.example.com. 1 7200 900 1209600 300"


class FakeClock:
    """Monotonic time the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Reply:
    """What the stub upstream answers: records as zone lines, an rcode, flags."""

    answer: Sequence[str] = A_300
    authority: Sequence[str] = ()
    rcode: int = wire.NOERROR
    tc: bool = False
    kind: Kind = Kind.RESOLVED


NXDOMAIN = Reply(answer=(), authority=(SOA,), rcode=wire.NXDOMAIN)
NODATA = Reply(answer=(), authority=(SOA,))


def _rrset(line: str) -> dns.rrset.RRset:
    name, ttl, rdclass, rdtype, *rdata = line.split()
    return dns.rrset.from_text(name, int(ttl), rdclass, rdtype, " ".join(rdata))


def _response(request: Request, reply: Reply) -> Response:
    """A Response carrying a real wire reply to `request`, analysed like an upstream's."""
    query = request.query
    message = dns.message.make_response(
        dns.message.make_query(query.qname, dns.rdatatype.RdataType(query.qtype))
    )
    message.set_rcode(dns.rcode.Rcode(reply.rcode))
    if reply.tc:
        message.flags |= dns.flags.TC
    message.answer.extend(_rrset(line) for line in reply.answer)
    message.authority.extend(_rrset(line) for line in reply.authority)
    return Response(reply.kind, replies.analyse(message.to_wire()), upstream="192.0.2.53:53")


class Upstream:
    """The next link: records the names asked, answers `reply`, or SERVFAIL when `failing`.

    `gate`, when set, holds each call until it opens; `called` and `answered` let a test wait
    for a background prefetch without sleeping.
    """

    def __init__(self, reply: Reply | None = None) -> None:
        self.reply = reply or Reply()
        self.calls: list[str] = []
        self.failing = False
        self.raises: Exception | None = None
        self.gate: asyncio.Event | None = None
        self.called = asyncio.Event()
        self.answered = asyncio.Event()
        self.cancelled = 0

    def hold(self) -> asyncio.Event:
        """Hold the next calls at the returned gate; forget earlier `called`/`answered`."""
        self.gate = asyncio.Event()
        self.called.clear()
        self.answered.clear()
        return self.gate

    async def resolve(self, request: Request) -> Response:
        self.calls.append(f"{request.query.qname}/{request.query.qtype}")
        self.called.set()
        if self.gate is not None:
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        self.answered.set()
        if self.raises is not None:
            raise self.raises
        if self.failing:
            return servfail(request.query, "every upstream timed out")
        return _response(request, self.reply)


def _request(name: str = "example.com", qtype: str = "A") -> Request:
    data = dns.message.make_query(name, qtype).to_wire()
    return Request(wire.parse_query(data), "192.168.1.5", 5555, "udp", 0.0)


def _dnssec_request(*, do: bool, cd: bool = False) -> Request:
    message = dns.message.make_query("example.com", "A", use_edns=0, want_dnssec=do)
    if cd:
        message.flags |= dns.flags.CD
    return Request(wire.parse_query(message.to_wire()), "192.168.1.5", 5555, "udp", 0.0)


def _sut(upstream: Upstream, clock: FakeClock, **config: Any) -> CacheResolver:
    return CacheResolver(upstream, CacheConfig(**config), clock=clock)


def _ttls(response: Response) -> tuple[int, ...]:
    """The TTLs a client would read, parsed back with dnspython (not via `Answer.ttls`)."""
    message = dns.message.from_wire(response.answer.wire)
    return tuple(rrset.ttl for section in (message.answer, message.authority) for rrset in section)


async def test_a_repeated_question_is_answered_from_the_cache() -> None:
    upstream, clock = Upstream(), FakeClock()
    sut = _sut(upstream, clock)

    first = await sut.resolve(_request())
    second = await sut.resolve(_request())

    assert (first.kind, second.kind) == (Kind.RESOLVED, Kind.CACHED)
    assert upstream.calls == ["example.com/1"]
    assert second.reason == "cached"
    assert second.upstream is None
    assert second.answer.wire == first.answer.wire
    assert (sut.stats.hits, sut.stats.misses, sut.stats.entries) == (1, 1, 1)


async def test_dnssec_and_plain_questions_never_share_an_entry() -> None:
    # A DO answer holds signatures a plain client did not ask for; a CD answer was not
    # validated by a validating upstream: each kind of question has its own entry.
    upstream, clock = Upstream(), FakeClock()
    sut = _sut(upstream, clock)
    kinds = [(False, False), (True, False), (False, True), (True, True)]
    for do, cd in kinds * 2:
        await sut.resolve(_dnssec_request(do=do, cd=cd))
    assert len(upstream.calls) == 4
    assert (sut.stats.hits, sut.stats.entries) == (4, 4)


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [
        (0.0, (300, 150)),
        (0.9, (300, 150)),
        (100.0, (200, 50)),
        (100.7, (200, 50)),
        (160.0, (140, 0)),
        (299.5, (1, 0)),
    ],
    ids=[
        "at-once",
        "under-a-second",
        "100s",
        "floor-of-fraction",
        "never-below-zero",
        "last-second",
    ],
)
async def test_hits_show_ttls_decayed_by_whole_seconds(
    elapsed: float, expected: tuple[int, ...]
) -> None:
    reply = Reply(authority=("example.com. 150 IN NS ns.example.com.",))
    upstream, clock = Upstream(reply), FakeClock()
    sut = _sut(upstream, clock)
    await sut.resolve(_request())

    clock.now += elapsed
    response = await sut.resolve(_request())

    assert response.kind is Kind.CACHED
    assert _ttls(response) == expected
    assert response.answer.ttls == expected


@pytest.mark.parametrize(
    ("elapsed", "kind", "calls"),
    [(299.9, Kind.CACHED, 1), (300.0, Kind.RESOLVED, 2), (5000.0, Kind.RESOLVED, 2)],
    ids=["just-before-expiry", "at-expiry", "long-after"],
)
async def test_an_expired_entry_is_fetched_again(elapsed: float, kind: Kind, calls: int) -> None:
    upstream, clock = Upstream(), FakeClock()
    sut = _sut(upstream, clock)
    await sut.resolve(_request())

    clock.now += elapsed
    response = await sut.resolve(_request())

    assert response.kind is kind
    assert len(upstream.calls) == calls
    if kind is Kind.RESOLVED:
        assert _ttls(response) == (300,)
        clock.now += 1
        assert (await sut.resolve(_request())).kind is Kind.CACHED


@pytest.mark.parametrize(
    ("reply", "negative_max_ttl", "lifetime"),
    [
        (NXDOMAIN, 3600, 300),
        (NODATA, 3600, 300),
        (NXDOMAIN, 60, 60),
        (NODATA, 60, 60),
    ],
    ids=["nxdomain-soa-minimum", "nodata-soa-minimum", "nxdomain-clamped", "nodata-clamped"],
)
async def test_negative_answers_live_for_the_soa_minimum_at_most_negative_max_ttl(
    reply: Reply, negative_max_ttl: int, lifetime: int
) -> None:
    upstream, clock = Upstream(reply), FakeClock()
    sut = _sut(upstream, clock, negative_max_ttl=negative_max_ttl)

    first = await sut.resolve(_request())
    clock.now += lifetime - 1
    hit = await sut.resolve(_request())
    clock.now += 1
    after = await sut.resolve(_request())

    assert _ttls(first) == (lifetime,)  # the SOA's own TTL (3600) never reaches the client
    assert hit.kind is Kind.CACHED
    assert hit.answer.rcode == reply.rcode
    assert _ttls(hit) == (1,)
    assert after.kind is Kind.RESOLVED
    assert len(upstream.calls) == 2


@pytest.mark.parametrize(
    ("ttl", "min_ttl", "max_ttl", "lifetime"),
    [
        (300, 0, 86400, 300),
        (5, 60, 86400, 60),
        (100000, 0, 3600, 3600),
        (100000, 60, 3600, 3600),
    ],
    ids=["within-bounds", "raised-to-min-ttl", "lowered-to-max-ttl", "both-bounds"],
)
async def test_min_and_max_ttl_clamp_both_lifetime_and_visible_ttls(
    ttl: int, min_ttl: int, max_ttl: int, lifetime: int
) -> None:
    reply = Reply(answer=(f"example.com. {ttl} IN A 93.184.216.34",))
    upstream, clock = Upstream(reply), FakeClock()
    sut = _sut(upstream, clock, min_ttl=min_ttl, max_ttl=max_ttl)

    first = await sut.resolve(_request())
    clock.now += lifetime - 1
    last = await sut.resolve(_request())
    clock.now += 1
    await sut.resolve(_request())

    assert _ttls(first) == (lifetime,)
    assert (last.kind, _ttls(last)) == (Kind.CACHED, (1,))
    assert len(upstream.calls) == 2


@pytest.mark.parametrize(
    "reply",
    [
        Reply(answer=(), rcode=wire.SERVFAIL),
        Reply(answer=(), rcode=wire.REFUSED),
        Reply(tc=True),
        Reply(answer=("example.com. 0 IN A 93.184.216.34",)),
        Reply(answer=(), authority=()),
        Reply(kind=Kind.BLOCKED),
        Reply(kind=Kind.REWRITTEN),
        Reply(kind=Kind.LOCAL),
        Reply(kind=Kind.FAILED),
    ],
    ids=[
        "servfail",
        "refused",
        "truncated",
        "ttl-zero",
        "nodata-without-soa",
        "blocked",
        "rewritten",
        "local",
        "failed",
    ],
)
async def test_uncacheable_answers_are_asked_for_every_time(reply: Reply) -> None:
    upstream, clock = Upstream(reply), FakeClock()
    sut = _sut(upstream, clock)

    first = await sut.resolve(_request())
    second = await sut.resolve(_request())

    assert first.kind is second.kind is reply.kind
    assert len(upstream.calls) == 2
    assert sut.stats.entries == 0


async def test_the_least_recently_used_entry_is_evicted_when_full() -> None:
    upstream, clock = Upstream(), FakeClock()
    sut = _sut(upstream, clock, max_entries=2)

    for name in ("a.example", "b.example", "a.example", "c.example"):
        await sut.resolve(_request(name))
    upstream.calls.clear()
    kinds = {name: (await sut.resolve(_request(name))).kind for name in ("a.example", "c.example")}
    await sut.resolve(_request("b.example"))

    assert kinds == {"a.example": Kind.CACHED, "c.example": Kind.CACHED}
    assert upstream.calls == ["b.example/1"]
    assert sut.stats.evictions == 2  # b when c came, then a when b came back
    assert sut.stats.entries == 2


@pytest.mark.parametrize(
    ("asked", "evicted"),
    [
        pytest.param("a b c d", "a", id="the-first-stored-goes-first"),
        pytest.param("a b c a d", "b", id="a-hit-keeps-an-entry"),
        pytest.param("a b c b a d", "c", id="hits-in-turn"),
        pytest.param("a b c c d", "a", id="a-hit-on-the-newest-changes-nothing"),
        pytest.param("a b c d b e", "a c", id="after-an-eviction"),
    ],
)
async def test_eviction_follows_the_order_of_use(asked: str, evicted: str) -> None:
    upstream, clock = Upstream(), FakeClock()
    sut = _sut(upstream, clock, max_entries=3)
    for name in asked.split():
        await sut.resolve(_request(f"{name}.example"))
    kinds = {name: sut.resolve_now(_request(f"{name}.example")) is not None for name in "abcde"}

    kept = set(asked.split()) - set(evicted.split())
    assert {name for name, hit in kinds.items() if hit} == kept
    assert sut.stats.entries == len(sut) == 3


async def test_max_entries_zero_disables_the_cache() -> None:
    upstream, clock = Upstream(), FakeClock()
    sut = _sut(upstream, clock, max_entries=0)

    kinds = [(await sut.resolve(_request())).kind for _ in range(3)]

    assert kinds == [Kind.RESOLVED] * 3
    assert len(upstream.calls) == 3
    assert sut.stats.entries == 0


async def test_a_smaller_max_entries_evicts_the_least_recently_used_at_once() -> None:
    upstream, clock = Upstream(), FakeClock()
    sut = _sut(upstream, clock, max_entries=10)
    for name in ("a.example", "b.example", "c.example", "a.example"):
        await sut.resolve(_request(name))
    below = Upstream()

    assert sut.reconfigure(below, CacheConfig(max_entries=2)) is sut
    kinds = {n: (await sut.resolve(_request(n))).kind for n in ("a.example", "c.example")}
    await sut.resolve(_request("b.example"))

    assert kinds == {"a.example": Kind.CACHED, "c.example": Kind.CACHED}
    assert below.calls == ["b.example/1"]  # the new chain's next link is the one asked
    assert (len(sut), sut.stats.entries) == (2, 2)


async def test_max_entries_zero_on_reload_empties_and_turns_off_the_cache() -> None:
    upstream, clock = Upstream(), FakeClock()
    sut = _sut(upstream, clock)
    await sut.resolve(_request())

    sut.reconfigure(upstream, CacheConfig(max_entries=0))
    kinds = [(await sut.resolve(_request())).kind for _ in range(2)]

    assert kinds == [Kind.RESOLVED] * 2
    assert (len(sut), sut.stats.entries) == (0, 0)


@pytest.mark.parametrize(
    ("before", "after", "kind"),
    [(86400.0, 0.0, Kind.FAILED), (0.0, 3600.0, Kind.STALE), (60.0, 3600.0, Kind.STALE)],
    ids=["turned-off", "turned-on", "widened"],
)
async def test_a_new_serve_stale_applies_to_answers_already_cached(
    before: float, after: float, kind: Kind
) -> None:
    upstream, clock = Upstream(), FakeClock()
    sut = _sut(upstream, clock, serve_stale=before)
    await sut.resolve(_request())

    sut.reconfigure(upstream, CacheConfig(serve_stale=after))
    clock.now += 300 + 100  # expired 100 s ago
    upstream.failing = True
    response = await sut.resolve(_request())

    assert response.kind is kind


async def test_a_lower_max_ttl_shortens_answers_already_cached() -> None:
    upstream, clock = Upstream(), FakeClock()
    sut = _sut(upstream, clock, serve_stale=0.0)
    await sut.resolve(_request())  # TTL 300

    sut.reconfigure(upstream, CacheConfig(max_ttl=60, serve_stale=0.0))
    clock.now += 10
    hit = await sut.resolve(_request())
    clock.now += 50
    expired = await sut.resolve(_request())

    assert (hit.kind, _ttls(hit)) == (Kind.CACHED, (50,))
    assert expired.kind is Kind.RESOLVED
    assert len(upstream.calls) == 2


@pytest.mark.parametrize(
    ("serve_stale", "past_expiry", "kind"),
    [
        (86400.0, 100.0, Kind.STALE),
        (3600.0, 3599.0, Kind.STALE),
        (3600.0, 3600.0, Kind.FAILED),
        (60.0, 100.0, Kind.FAILED),
        (0.0, 0.0, Kind.FAILED),
        (0.0, 100.0, Kind.FAILED),
    ],
    ids=[
        "within-a-day",
        "last-second-of-window",
        "window-closed",
        "after-window",
        "disabled-at-expiry",
        "disabled",
    ],
)
async def test_expired_data_is_served_stale_only_within_the_window(
    serve_stale: float, past_expiry: float, kind: Kind
) -> None:
    reply = Reply(authority=("example.com. 150 IN NS ns.example.com.",))
    upstream, clock = Upstream(reply), FakeClock()
    sut = _sut(upstream, clock, serve_stale=serve_stale)
    await sut.resolve(_request())

    clock.now += 300 + past_expiry
    upstream.failing = True
    response = await sut.resolve(_request())

    assert response.kind is kind
    assert len(upstream.calls) == 2
    if kind is Kind.STALE:
        assert _ttls(response) == (STALE_TTL, STALE_TTL)
        assert response.reason == "stale: every upstream timed out"
        assert response.edns_options == wire.edns_option(15, b"\x00\x03")  # EDE Stale Answer
        assert sut.stats.stale_served == 1
        assert sut.stats.entries == 1
    else:
        assert response.answer.rcode == wire.SERVFAIL
        assert sut.stats.stale_served == 0


async def test_an_entry_past_its_stale_window_is_dropped_when_met() -> None:
    upstream, clock = Upstream(), FakeClock()
    sut = _sut(upstream, clock, serve_stale=60.0)
    await sut.resolve(_request())
    upstream.failing = True

    clock.now += 300 + 30
    stale = await sut.resolve(_request())
    clock.now += 30
    failed = await sut.resolve(_request())

    assert (stale.kind, failed.kind) == (Kind.STALE, Kind.FAILED)
    assert sut.stats.entries == 0


async def test_a_fresh_answer_replaces_the_expired_entry() -> None:
    upstream, clock = Upstream(), FakeClock()
    sut = _sut(upstream, clock)
    await sut.resolve(_request())
    clock.now += 400
    upstream.reply = Reply(answer=("example.com. 600 IN A 192.0.2.7",))

    refreshed = await sut.resolve(_request())
    clock.now += 500
    hit = await sut.resolve(_request())

    assert refreshed.kind is Kind.RESOLVED
    assert (hit.kind, _ttls(hit)) == (Kind.CACHED, (100,))
    assert sut.stats.entries == 1


@pytest.mark.parametrize(
    ("name", "qtype", "kind"),
    [
        ("example.com", "A", Kind.CACHED),
        ("EXAMPLE.com", "A", Kind.CACHED),
        ("eXaMpLe.CoM.", "A", Kind.CACHED),
        ("example.com", "AAAA", Kind.RESOLVED),
        ("www.example.com", "A", Kind.RESOLVED),
    ],
    ids=["same", "upper-case", "mixed-case-0x20", "other-qtype", "other-name"],
)
async def test_entries_are_keyed_by_lower_cased_name_and_type(
    name: str, qtype: str, kind: Kind
) -> None:
    upstream, clock = Upstream(), FakeClock()
    sut = _sut(upstream, clock)
    await sut.resolve(_request("example.com", "A"))

    response = await sut.resolve(_request(name, qtype))

    assert response.kind is kind


async def test_errors_of_the_next_link_propagate() -> None:
    upstream, clock = Upstream(), FakeClock()
    upstream.raises = RuntimeError("bug below")
    sut = _sut(upstream, clock)

    with pytest.raises(RuntimeError, match="bug below"):
        await sut.resolve(_request())


# -- prefetch ------------------------------------------------------------------------------


async def _hit_at(
    sut: CacheResolver, clock: FakeClock, start: float, times: Sequence[float]
) -> None:
    for at in times:
        clock.now = start + at
        response = await sut.resolve(_request())
        assert response.kind is Kind.CACHED


async def test_a_popular_entry_near_its_end_is_refreshed_once_in_the_background() -> None:
    upstream, clock = Upstream(), FakeClock()
    sut = _sut(upstream, clock)
    await sut.resolve(_request())
    start = clock.now
    gate = upstream.hold()

    await _hit_at(sut, clock, start, [10, 275, 280, 285])  # last 10 %: 3 hits, one refresh
    await upstream.called.wait()
    upstream.reply = Reply(answer=("example.com. 600 IN A 192.0.2.7",))
    gate.set()
    await upstream.answered.wait()

    clock.now = start + 400  # the old entry would have expired by now
    response = await sut.resolve(_request())
    assert response.kind is Kind.CACHED
    assert b"\xc0\x00\x02\x07" in response.answer.wire  # 192.0.2.7, the refreshed address
    assert len(upstream.calls) == 2
    assert sut.stats.prefetches == 1


@pytest.mark.parametrize(
    ("ttl", "prefetch", "hits"),
    [
        (300, True, [280]),
        (300, True, [10, 200]),
        (300, False, [10, 280]),
        (9, True, [1, 8.5]),
    ],
    ids=["hit-once", "not-near-the-end", "disabled", "short-lived"],
)
async def test_no_prefetch_for_unpopular_early_disabled_or_short_lived_entries(
    ttl: int, prefetch: bool, hits: Sequence[float]
) -> None:
    upstream = Upstream(Reply(answer=(f"example.com. {ttl} IN A 93.184.216.34",)))
    clock = FakeClock()
    sut = _sut(upstream, clock, prefetch=prefetch)
    await sut.resolve(_request())

    await _hit_at(sut, clock, clock.now, hits)

    assert len(upstream.calls) == 1
    assert sut.stats.prefetches == 0
    await sut.close()


async def test_close_cancels_a_pending_prefetch() -> None:
    upstream, clock = Upstream(), FakeClock()
    sut = _sut(upstream, clock)
    await sut.resolve(_request())
    gate = upstream.hold()
    await _hit_at(sut, clock, clock.now, [10, 280])
    await upstream.called.wait()

    await sut.close()

    assert upstream.cancelled == 1
    assert sut.stats.prefetches == 1
    clock.now += 25  # the entry expires: nothing was stored by the cancelled refresh
    gate.set()
    assert (await sut.resolve(_request())).kind is Kind.RESOLVED


async def test_a_failing_prefetch_keeps_the_entry_and_is_swallowed() -> None:
    upstream, clock = Upstream(), FakeClock()
    sut = _sut(upstream, clock)
    await sut.resolve(_request())
    upstream.answered.clear()
    upstream.raises = RuntimeError("network down")

    await _hit_at(sut, clock, clock.now, [10, 280])
    await upstream.answered.wait()
    response = await sut.resolve(_request())

    assert response.kind is Kind.CACHED
    assert sut.stats.prefetches == 1
    await sut.close()


class Stub:
    """The next link, fast enough for tens of thousands of names: one A record, TTL 300."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def resolve(self, request: Request) -> Response:
        query = request.query
        self.calls.append(query.qname)
        header = wire.HEADER.pack(1, 0x8180, 1, 1, 0, 0)
        question = query.qname_wire + wire.TYPE_CLASS.pack(query.qtype, query.qclass)
        record = b"\xc0\x0c" + wire.RR_FIXED.pack(1, 1, 300, 4) + bytes((192, 0, 2, 1))
        return Response(Kind.RESOLVED, replies.analyse(header + question + record))


def _fast_request(name: str) -> Request:
    header = wire.HEADER.pack(1, wire.RD, 1, 0, 0, 0)
    data = header + text_to_wire(name) + wire.TYPE_CLASS.pack(wire.TYPE_A, wire.CLASS_IN)
    return Request(wire.parse_query(data), "192.168.1.5", 5555, "udp", 0.0)


async def test_the_default_cache_keeps_32768_answers() -> None:
    stub = Stub()
    sut = CacheResolver(stub, default_config().cache, clock=FakeClock())
    names = [f"n{i}.example" for i in range(32_769)]

    for name in names:
        await sut.resolve(_fast_request(name))
    stub.calls.clear()
    kinds = [(await sut.resolve(_fast_request(n))).kind for n in (names[1], names[-1], names[0])]

    assert kinds == [Kind.CACHED, Kind.CACHED, Kind.RESOLVED]
    assert stub.calls == ["n0.example"]  # the oldest went when the 32,769th came
    assert sut.stats.entries == 32_768


async def test_what_a_cached_answer_costs_in_memory() -> None:
    """Under churn (every new name evicts the oldest): entry, bytes, its place in the LRU."""
    upstream, clock = Upstream(), FakeClock()
    sut = _sut(upstream, clock, max_entries=1024)
    requests = [_request(f"n{n}.example") for n in range(4 * 1024)]  # keys not counted
    tracemalloc.start()
    for request in requests:
        await sut.resolve(request)
    upstream.calls.clear()  # the stub's record of what it was asked
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()

    assert len(sut) == 1024
    assert held / len(sut) <= 395  # 415 with an OrderedDict's nodes and pointer table beside it
