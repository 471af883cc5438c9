"""The upstream link: strategies, staggered failover, back-off, coalescing; conditional routes.

The transport is scripted per server, so each test says exactly how each upstream behaves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from filterdns.config import UpstreamServer
from filterdns.dns import names, wire
from filterdns.dns.model import Kind, Request, Response
from filterdns.errors import UpstreamError
from filterdns.resolvers.conditional import ConditionalResolver
from filterdns.resolvers.upstream import Outstanding, UpstreamResolver, backoff_pause
from filterdns.wheel import SWEEP_AT

A = UpstreamServer("udp", "192.0.2.1", 53)
B = UpstreamServer("udp", "192.0.2.2", 53)
C = UpstreamServer("tls", "192.0.2.3", 853, "dns.test")

Behaviour = Callable[[bytes, int], Awaitable[bytes]]


def reply_for(qname_wire: bytes, qtype: int, address: str, rcode: int = 0) -> bytes:
    query = dns.message.make_query(names.name_to_text(qname_wire), qtype)
    reply = dns.message.make_response(query)
    reply.set_rcode(rcode)
    if rcode == 0:
        reply.answer.append(dns.rrset.from_text(query.question[0].name, 300, "IN", "A", address))
    return reply.to_wire()


def answers(address: str) -> Behaviour:
    async def behave(qname_wire: bytes, qtype: int) -> bytes:
        return reply_for(qname_wire, qtype, address)

    return behave


def slow(delay: float, address: str) -> Behaviour:
    async def behave(qname_wire: bytes, qtype: int) -> bytes:
        await asyncio.sleep(delay)  # the upstream's own latency, not a wait in the test
        return reply_for(qname_wire, qtype, address)

    return behave


def rcode(code: int) -> Behaviour:
    async def behave(qname_wire: bytes, qtype: int) -> bytes:
        return reply_for(qname_wire, qtype, "", code)

    return behave


def silent() -> Behaviour:
    async def behave(qname_wire: bytes, qtype: int) -> bytes:
        await asyncio.Event().wait()  # never answers; the resolver's deadline ends it
        raise AssertionError("unreachable")

    return behave


def unreachable() -> Behaviour:
    async def behave(qname_wire: bytes, qtype: int) -> bytes:
        raise UpstreamError("upstream 192.0.2.1:53 refused the connection")

    return behave


def garbage() -> Behaviour:
    async def behave(qname_wire: bytes, qtype: int) -> bytes:
        return b"\x00\x01\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x07exa"

    return behave


class ScriptedTransport:
    """Stands in for Transport: each server behaves as its script says; every call is noted."""

    def __init__(self, scripts: dict[UpstreamServer, Behaviour]) -> None:
        self.scripts = scripts
        self.calls: list[tuple[UpstreamServer, str, float]] = []
        self.dnssec: list[tuple[bool, bool]] = []  # (DO, CD) of each exchange
        self.gate: asyncio.Event | None = None
        self._called = asyncio.Event()

    async def exchange(
        self,
        server: UpstreamServer,
        qname_wire: bytes,
        qtype: int,
        qclass: int,
        deadline: float,
        *,
        dnssec_ok: bool = False,
        cd: bool = False,
    ) -> bytes:
        loop = asyncio.get_running_loop()
        self.calls.append((server, names.name_to_text(qname_wire), loop.time()))
        self.dnssec.append((dnssec_ok, cd))
        self._called.set()
        if self.gate is not None:
            await self.gate.wait()
        try:
            async with asyncio.timeout_at(deadline):
                return await self.scripts[server](qname_wire, qtype)
        except TimeoutError:
            raise UpstreamError(f"upstream {server} timed out") from None

    def start(
        self,
        server: UpstreamServer,
        qname_wire: bytes,
        qtype: int,
        qclass: int,
        deadline: float,
        *,
        dnssec_ok: bool = False,
        cd: bool = False,
        notify: Callable[[asyncio.Future[bytes]], None] | None = None,
    ) -> asyncio.Future[bytes]:
        task = asyncio.ensure_future(
            self.exchange(server, qname_wire, qtype, qclass, deadline, dnssec_ok=dnssec_ok, cd=cd)
        )
        if notify is not None:
            task.add_done_callback(lambda done: None if done.cancelled() else notify(done))
        return task

    async def wait_for_calls(self, count: int) -> None:
        """Return once `count` exchanges have started."""
        while len(self.calls) < count:
            self._called.clear()
            await self._called.wait()

    def asked(self) -> list[UpstreamServer]:
        return [server for server, _name, _at in self.calls]


def request(name: str = "example.com", qtype: str = "A") -> Request:
    query = wire.parse_query(dns.message.make_query(name, qtype).to_wire())
    return Request(query, "127.0.0.1", 40000, "udp", 0.0)


def address_of(response: Response) -> list[str]:
    message = dns.message.from_wire(response.answer.wire)
    return [rdata.address for rrset in message.answer for rdata in rrset]


def resolver(
    transport: ScriptedTransport,
    *servers: UpstreamServer,
    strategy: str = "failover",
    timeout: float = 1.0,
    backoff: float = 30.0,
    outstanding: Outstanding | None = None,
) -> UpstreamResolver:
    return UpstreamResolver(
        servers or (A, B),
        strategy=strategy,
        timeout=timeout,
        backoff=backoff,
        transport=transport,
        outstanding=outstanding,
    )


async def test_failover_asks_only_the_first_server_when_it_answers() -> None:
    transport = ScriptedTransport({A: answers("10.0.0.1"), B: answers("10.0.0.2")})
    sut = resolver(transport)
    response = await sut.resolve(request())
    assert response.kind is Kind.RESOLVED
    assert address_of(response) == ["10.0.0.1"]
    assert response.upstream == "192.0.2.1:53"
    assert transport.asked() == [A]


async def test_a_silent_first_server_hands_over_after_the_stagger_then_rests() -> None:
    transport = ScriptedTransport({A: silent(), B: answers("10.0.0.2")})
    sut = resolver(transport, timeout=0.6)
    first = await sut.resolve(request("one.example"))
    second = await sut.resolve(request("two.example"))
    assert address_of(first) == address_of(second) == ["10.0.0.2"]
    # The second query skips A (backing off) and goes straight to B.
    assert transport.asked() == [A, B, B]
    (_, _, asked_a), (_, _, asked_b) = transport.calls[:2]
    assert 0.25 <= asked_b - asked_a < 0.6  # B is asked at timeout / 2, before the deadline


async def test_a_fast_failure_hands_over_at_once() -> None:
    transport = ScriptedTransport({A: unreachable(), B: answers("10.0.0.2")})
    sut = resolver(transport, timeout=10.0)  # a stagger of 5 s would be obvious
    response = await sut.resolve(request())
    assert address_of(response) == ["10.0.0.2"]
    (_, _, asked_a), (_, _, asked_b) = transport.calls
    assert asked_b - asked_a < 1.0


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(rcode(dns.rcode.SERVFAIL), id="servfail"),
        pytest.param(rcode(dns.rcode.REFUSED), id="refused"),
        pytest.param(garbage(), id="malformed"),
    ],
)
async def test_an_unhelpful_answer_counts_as_a_failure(failure: Behaviour) -> None:
    transport = ScriptedTransport({A: failure, B: answers("10.0.0.2")})
    sut = resolver(transport)
    response = await sut.resolve(request())
    assert address_of(response) == ["10.0.0.2"]
    assert sut.health[A].failures == 1


async def test_nxdomain_is_an_answer_not_a_failure() -> None:
    transport = ScriptedTransport({A: rcode(dns.rcode.NXDOMAIN), B: answers("10.0.0.2")})
    sut = resolver(transport)
    response = await sut.resolve(request())
    assert response.kind is Kind.RESOLVED
    assert response.answer.rcode == dns.rcode.NXDOMAIN
    assert transport.asked() == [A]


async def test_every_server_failing_gives_servfail_naming_each() -> None:
    transport = ScriptedTransport({A: rcode(dns.rcode.SERVFAIL), B: silent()})
    sut = resolver(transport, timeout=0.3)
    response = await sut.resolve(request())
    assert response.kind is Kind.FAILED
    assert response.answer.rcode == dns.rcode.SERVFAIL
    assert "192.0.2.1:53 answered SERVFAIL" in response.reason
    assert "192.0.2.2:53 timed out" in response.reason


async def test_servers_all_backing_off_are_still_tried() -> None:
    transport = ScriptedTransport({A: unreachable(), B: unreachable()})
    sut = resolver(transport)
    await sut.resolve(request("one.example"))
    transport.scripts = {A: answers("10.0.0.1"), B: answers("10.0.0.2")}
    response = await sut.resolve(request("two.example"))
    assert address_of(response) == ["10.0.0.1"]
    assert sut.health[A].failures == 0  # recovered


async def test_back_off_doubles_and_is_capped() -> None:
    transport = ScriptedTransport({A: unreachable()})
    sut = resolver(transport, A, backoff=3.0)
    pauses = []
    loop = asyncio.get_running_loop()
    for index in range(4):
        await sut.resolve(request(f"n{index}.example"))
        pauses.append(round(sut.health[A].skip_until - loop.time()))
    assert pauses == [1, 2, 3, 3]


@pytest.mark.parametrize(
    ("failures", "expected"),
    [
        pytest.param(0, 0.0, id="none"),
        pytest.param(1, 1.0, id="first"),
        pytest.param(5, 16.0, id="doubling"),
        pytest.param(6, 30.0, id="capped"),
        pytest.param(1_025, 30.0, id="past-float-range"),
        pytest.param(10**6, 30.0, id="a-million"),
        pytest.param(10**100, 30.0, id="absurd"),
    ],
)
def test_back_off_is_bounded_for_any_number_of_failures(failures: int, expected: float) -> None:
    assert backoff_pause(failures, 30.0) == expected


def test_back_off_reaches_any_ceiling_without_overflow() -> None:
    assert backoff_pause(10**6, 1e300) == 2.0**62  # flat past 2**62 s, never an OverflowError
    assert backoff_pause(10**6, float("inf")) == 2.0**62


async def test_two_thousand_failures_in_a_row_keep_answering_servfail_quickly() -> None:
    # Past ~1,024 failures the old doubling overflowed and every query raised.
    transport = ScriptedTransport({A: unreachable()})
    sut = resolver(transport, A, backoff=3.0)
    kinds = {(await sut.resolve(request(f"n{index}.example"))).kind for index in range(2_000)}
    assert kinds == {Kind.FAILED}
    assert sut.health[A].failures == 2_000
    assert sut.health[A].skip_until - asyncio.get_running_loop().time() == pytest.approx(3.0, 0.1)


@pytest.mark.parametrize("strategy", ["failover", "round_robin", "fastest"])
async def test_after_a_million_failures_a_server_is_still_asked_and_can_recover(
    strategy: str,
) -> None:
    transport = ScriptedTransport({A: unreachable(), B: silent()})
    sut = resolver(transport, strategy=strategy, timeout=0.3, backoff=30.0)
    for server in (A, B):
        sut.health[server].failures = 10**6  # as after a day-long outage
        sut.health[server].rtt = 0.3
    failed = await sut.resolve(request("one.example"))
    assert failed.kind is Kind.FAILED
    assert sut.health[A].failures == sut.health[B].failures == 10**6 + 1
    loop = asyncio.get_running_loop()
    assert sut.health[A].skip_until - loop.time() == pytest.approx(30.0, abs=0.5)

    # The "is the other server faster" path: A is asked first and stays silent, B answers
    # after the stagger, and A's silence counts as one failure more.
    transport.scripts = {A: silent(), B: answers("10.0.0.2")}
    sut.health[A].skip_until = 0.0
    answered = await sut.resolve(request("two.example"))
    assert address_of(answered) == ["10.0.0.2"]
    assert transport.asked()[-2:] == [A, B]
    assert sut.health[B].failures == 0
    assert sut.health[A].failures == 10**6 + 2


async def test_round_robin_takes_turns() -> None:
    transport = ScriptedTransport({A: answers("10.0.0.1"), B: answers("10.0.0.2")})
    sut = resolver(transport, strategy="round_robin")
    for index in range(4):
        await sut.resolve(request(f"n{index}.example"))
    assert transport.asked() == [A, B, A, B]


async def test_fastest_measures_each_server_then_prefers_the_quicker() -> None:
    transport = ScriptedTransport({A: slow(0.05, "10.0.0.1"), B: answers("10.0.0.2")})
    sut = resolver(transport, strategy="fastest")
    for index in range(4):
        await sut.resolve(request(f"n{index}.example"))
    assert transport.asked() == [A, B, B, B]


async def test_identical_queries_in_flight_share_one_exchange() -> None:
    transport = ScriptedTransport({A: answers("10.0.0.1"), B: answers("10.0.0.2")})
    transport.gate = asyncio.Event()
    sut = resolver(transport)
    same = [asyncio.ensure_future(sut.resolve(request("Example.com"))) for _ in range(10)]
    other = asyncio.ensure_future(sut.resolve(request("example.com", "AAAA")))
    await asyncio.sleep(0)  # let every resolve call register before the upstream answers
    transport.gate.set()
    responses = await asyncio.gather(*same, other)
    assert all(address_of(r) == ["10.0.0.1"] for r in responses[:10])
    assert len(transport.calls) == 2  # one for A, one for AAAA
    assert sut.coalesced == 9


async def test_one_waiter_giving_up_does_not_cancel_the_shared_exchange() -> None:
    transport = ScriptedTransport({A: answers("10.0.0.1")})
    transport.gate = asyncio.Event()
    sut = resolver(transport, A)
    quitter = asyncio.ensure_future(sut.resolve(request()))
    stayer = asyncio.ensure_future(sut.resolve(request()))
    await asyncio.sleep(0)
    quitter.cancel()
    transport.gate.set()
    assert address_of(await stayer) == ["10.0.0.1"]
    assert quitter.cancelled()


async def test_past_the_caps_queries_fail_at_once_without_asking() -> None:
    transport = ScriptedTransport({A: silent(), B: silent()})
    caps = Outstanding(total=3, per_server=2)
    sut = resolver(transport, timeout=0.5, outstanding=caps)
    loop = asyncio.get_running_loop()
    started = loop.time()
    queries = [asyncio.ensure_future(sut.resolve(request(f"n{i}.example"))) for i in range(10)]
    done, pending = await asyncio.wait(queries, timeout=0.2)  # well before the deadline
    assert len(pending) == 3  # two to A, then A is full and the third goes to B
    assert transport.asked() == [A, A, B]
    assert (caps.in_flight, caps.by_server) == (3, {A: 2, B: 1})
    assert all(q.result().kind is Kind.FAILED for q in done)
    assert all("too many queries in flight" in q.result().reason for q in done)
    assert caps.overflowed == 7
    await asyncio.gather(*pending)
    assert loop.time() - started < 1.0
    await asyncio.sleep(0)  # the exchanges' done callbacks
    assert (caps.in_flight, caps.by_server) == (0, {})  # everything given back at the deadline


async def test_a_server_at_its_cap_hands_new_queries_to_the_next() -> None:
    transport = ScriptedTransport({A: silent(), B: answers("10.0.0.2")})
    caps = Outstanding(total=10, per_server=2)
    sut = resolver(transport, timeout=0.6, outstanding=caps)
    waiting = [asyncio.ensure_future(sut.resolve(request(f"w{i}.example"))) for i in range(2)]
    await transport.wait_for_calls(2)
    response = await sut.resolve(request("third.example"))
    assert address_of(response) == ["10.0.0.2"]
    assert transport.asked() == [A, A, B]  # no stagger's wait: A had no room
    assert sut.health[A].failures == 0  # a full server is not a failing one
    # The two waiting on A get B too after the stagger.
    assert [address_of(r) for r in await asyncio.gather(*waiting)] == [["10.0.0.2"]] * 2


async def test_identical_questions_in_flight_count_once() -> None:
    transport = ScriptedTransport({A: answers("10.0.0.1")})
    transport.gate = asyncio.Event()
    caps = Outstanding(total=8, per_server=1)
    sut = resolver(transport, A, outstanding=caps)
    same = [asyncio.ensure_future(sut.resolve(request("example.com"))) for _ in range(50)]
    await transport.wait_for_calls(1)
    assert (caps.in_flight, caps.joined) == (1, 49)
    transport.gate.set()
    responses = await asyncio.gather(*same)
    assert all(address_of(r) == ["10.0.0.1"] for r in responses)
    assert caps.overflowed == 0
    assert caps.joined == 0


async def test_a_flood_of_one_question_waits_only_up_to_the_cap() -> None:
    # Each waiting query holds memory; a flood of the same name must not collect them all.
    transport = ScriptedTransport({A: answers("10.0.0.1")})
    transport.gate = asyncio.Event()
    caps = Outstanding(total=2, per_server=2)  # 8 may join per exchange allowed: 16
    sut = resolver(transport, A, outstanding=caps)
    flood = [asyncio.ensure_future(sut.resolve(request("example.com"))) for _ in range(40)]
    done, _pending = await asyncio.wait(flood, timeout=0.1)
    assert len(done) == 40 - 1 - 16
    assert all(q.result().kind is Kind.FAILED for q in done)
    other = asyncio.ensure_future(sut.resolve(request("other.example")))  # its own exchange
    transport.gate.set()
    assert address_of(await other) == ["10.0.0.1"]
    await asyncio.gather(*flood)
    answered = [address_of(q.result()) for q in flood if q not in done]
    assert answered == [["10.0.0.1"]] * 17


async def test_the_caps_are_shared_by_every_upstream_link() -> None:
    router = UpstreamServer("udp", "10.9.9.9", 53)
    transport = ScriptedTransport({A: silent(), router: answers("10.9.9.9")})
    caps = Outstanding(total=1, per_server=1)
    main = resolver(transport, A, timeout=0.3, outstanding=caps)
    local = resolver(transport, router, outstanding=caps)
    sut = ConditionalResolver(main, [("home.arpa", local)])
    held = asyncio.ensure_future(sut.resolve(request("slow.example")))
    await transport.wait_for_calls(1)
    turned_away = await sut.resolve(request("nas.home.arpa"))
    assert turned_away.kind is Kind.FAILED
    assert transport.asked() == [A]
    assert (await held).kind is Kind.FAILED  # A's deadline
    await asyncio.sleep(0)
    assert address_of(await sut.resolve(request("nas.home.arpa"))) == ["10.9.9.9"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("router.home.arpa", "10.9.9.9", id="under-suffix"),
        pytest.param("HOME.ARPA", "10.9.9.9", id="suffix-itself"),
        pytest.param("nas.lan.home.arpa", "10.8.8.8", id="longest-suffix-wins"),
        pytest.param("xhome.arpa", "10.0.0.1", id="not-a-label-boundary"),
        pytest.param("example.com", "10.0.0.1", id="public-name"),
    ],
)
async def test_conditional_routes_by_longest_suffix(name: str, expected: str) -> None:
    router = UpstreamServer("udp", "10.9.9.9", 53)
    nas = UpstreamServer("udp", "10.8.8.8", 53)
    transport = ScriptedTransport(
        {A: answers("10.0.0.1"), router: answers("10.9.9.9"), nas: answers("10.8.8.8")}
    )
    routes = [
        ("home.arpa", resolver(transport, router)),
        ("lan.home.arpa.", resolver(transport, nas)),
    ]
    sut = ConditionalResolver(resolver(transport, A), routes)
    assert address_of(await sut.resolve(request(name))) == [expected]


def dnssec_request(*, do: bool, cd: bool = False) -> Request:
    message = dns.message.make_query("example.com", "A", want_dnssec=do, use_edns=0)
    if cd:
        message.flags |= dns.flags.CD
    return Request(wire.parse_query(message.to_wire()), "127.0.0.1", 40000, "udp", 0.0)


@pytest.mark.parametrize(("do", "cd"), [(False, False), (True, False), (False, True), (True, True)])
async def test_the_clients_do_and_cd_bits_go_upstream(do: bool, cd: bool) -> None:
    transport = ScriptedTransport({A: answers("10.0.0.1"), B: answers("10.0.0.2")})
    await resolver(transport).resolve(dnssec_request(do=do, cd=cd))
    assert transport.dnssec == [(do, cd)]


async def test_a_dnssec_question_never_joins_a_plain_one_in_flight() -> None:
    transport = ScriptedTransport({A: slow(0.05, "10.0.0.1"), B: answers("10.0.0.2")})
    sut = resolver(transport)
    questions = [dnssec_request(do=False), dnssec_request(do=True), dnssec_request(do=True)]
    await asyncio.gather(*(sut.resolve(q) for q in questions))
    assert sorted(transport.dnssec) == [(False, False), (True, False)]
    assert sut.coalesced == 1


def authenticated(qname_wire: bytes, qtype: int) -> Awaitable[bytes]:
    async def behave() -> bytes:
        reply = dns.message.from_wire(reply_for(qname_wire, qtype, "10.0.0.1"))
        reply.flags |= dns.flags.AD
        return reply.to_wire()

    return behave()


@pytest.mark.parametrize("trust_ad", [False, True])
async def test_the_ad_bit_is_kept_only_from_servers_trusted_to_validate(trust_ad: bool) -> None:
    transport = ScriptedTransport({A: authenticated, B: authenticated})
    sut = UpstreamResolver(
        (A, B), strategy="failover", timeout=1.0, backoff=30.0, transport=transport,
        trust_ad=trust_ad,
    )  # fmt: skip
    response = await sut.resolve(dnssec_request(do=True))
    assert bool(dns.message.from_wire(response.answer.wire).flags & dns.flags.AD) is trust_ad


@pytest.mark.parametrize(
    ("script_a", "script_b", "answered"),
    [
        (answers("10.0.0.1"), answers("10.0.0.2"), True),
        (unreachable(), answers("10.0.0.2"), True),
        (slow(0.5, "10.0.0.1"), answers("10.0.0.2"), True),
        (rcode(dns.rcode.SERVFAIL), unreachable(), False),
        (silent(), silent(), False),
    ],
    ids=["first-answers", "fast-failure-then-next", "stagger-then-next", "all-fail", "deadline"],
)
async def test_every_exchange_gives_its_room_back_however_it_ends(
    script_a: Behaviour, script_b: Behaviour, answered: bool
) -> None:
    transport = ScriptedTransport({A: script_a, B: script_b})
    caps = Outstanding(total=10, per_server=10)
    sut = resolver(transport, timeout=0.4, outstanding=caps)
    responses = await asyncio.gather(*(sut.resolve(request(f"r{i}.example")) for i in range(3)))
    assert all((r.kind is Kind.RESOLVED) == answered for r in responses)
    assert (caps.in_flight, caps.by_server) == (0, {})  # nothing left counted, at once


async def test_answered_exchanges_do_not_wait_for_their_deadlines() -> None:
    # Every answered query stayed in the deadline's wheel for the whole timeout: at a high rate
    # of new names, tens of thousands of finished exchanges, each holding its question.
    transport = ScriptedTransport({A: answers("10.0.0.1"), B: answers("10.0.0.2")})
    sut = resolver(transport, timeout=30.0)
    for batch in range(20):
        names_ = [f"n{batch}-{i}.example" for i in range(100)]
        responses = await asyncio.gather(*(sut.resolve(request(n)) for n in names_))
        assert all(r.kind is Kind.RESOLVED for r in responses)
    assert len(sut.deadlines) < 100 + SWEEP_AT  # not the 2,000 answered
    assert len(sut.staggers) < 100 + SWEEP_AT


async def test_queries_still_waiting_reach_their_deadline_through_the_sweeps() -> None:
    # Answered exchanges are swept out around the silent ones; those must still time out.
    async def some_silent(qname_wire: bytes, qtype: int) -> bytes:
        if qname_wire.startswith(b"\x06silent"):
            await asyncio.Event().wait()
        return reply_for(qname_wire, qtype, "10.0.0.1")

    transport = ScriptedTransport({A: some_silent})
    sut = resolver(transport, A, timeout=0.5, outstanding=Outstanding(2000, 2000))  # no cap
    names_ = [f"silent.n{i}.example" if i % 50 == 7 else f"n{i}.example" for i in range(1000)]
    responses = await asyncio.gather(*(sut.resolve(request(n)) for n in names_))
    kinds = {n: r.kind for n, r in zip(names_, responses, strict=True)}
    assert {n for n, k in kinds.items() if k is not Kind.RESOLVED} == {
        n for n in names_ if n.startswith("silent.")
    }  # the 20 silent ones failed at their deadline, every other one was answered
    assert len(sut.deadlines) < SWEEP_AT  # swept along the way: not the 1,000 asked
