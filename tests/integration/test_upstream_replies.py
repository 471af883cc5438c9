"""Broken upstream replies never reach a client or the cache: another upstream or SERVFAIL."""

from __future__ import annotations

from collections.abc import Callable

import dns.rcode
import pytest

from tests.fakes.replies import join, split
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import addresses, config_for, running_proxy

RECORDS = {
    ("example.com", "A"): ["93.184.216.34"],
    ("example.com", "NS"): ["ns1.example.com.", "ns2.example.com."],
}
Mangle = Callable[[bytes], bytes]


def _opt_moved_to(section: int) -> Mangle:
    """The reply's OPT record (dnspython writes it last) moved to the start of a section."""

    def mangle(data: bytes) -> bytes:
        parts = split(data)
        assert parts is not None
        counts, found, head = parts
        opt = found.pop()
        assert opt[:3] == b"\x00\x00\x29", "the OPT record comes last"
        counts[3] -= 1
        counts[section] += 1
        found.insert(sum(counts[1:section]), opt)
        return bytes(join(head, counts, found))

    return mangle


def _second_opt(data: bytes) -> bytes:
    parts = split(data)
    assert parts is not None
    counts, found, head = parts
    counts[3] += 1
    return bytes(join(head, counts, [*found, found[-1]]))


def _first_answer_dropped(data: bytes) -> bytes:
    parts = split(data)
    assert parts is not None
    counts, found, head = parts
    return bytes(join(head, counts, found[1:]))  # the counts still say it is there


def _one_answer_fewer_counted(data: bytes) -> bytes:
    return data[:6] + (int.from_bytes(data[6:8], "big") - 1).to_bytes(2, "big") + data[8:]


BROKEN = [
    pytest.param(_opt_moved_to(1), id="opt-in-answer"),
    pytest.param(_opt_moved_to(2), id="opt-in-authority"),
    pytest.param(_second_opt, id="two-opts"),
    pytest.param(_first_answer_dropped, id="record-missing-counts-kept"),
    pytest.param(_one_answer_fewer_counted, id="record-past-the-counts"),
    pytest.param(lambda data: data + b"\x00\x00\x01", id="trailing-bytes"),
]


@pytest.mark.parametrize("mangle", BROKEN)
@pytest.mark.parametrize("qtype", ["A", "NS"])
async def test_a_broken_reply_counts_as_a_failure_and_the_next_upstream_answers(
    mangle: Mangle, qtype: str
) -> None:
    async with FakeUpstream(RECORDS) as broken, FakeUpstream(RECORDS) as good:
        broken.mangle = mangle
        async with running_proxy(config_for(broken.address, good.address)) as proxy:
            first = await proxy.query("example.com", qtype)  # dnspython: strict, no trailing
            again = await proxy.query("example.com", qtype, tcp=True)
    assert broken.calls >= 1 and good.calls == 1  # the second query came from the cache
    for reply in (first, again):
        assert reply.rcode() == dns.rcode.NOERROR
        assert len(reply.answer[0]) == len(RECORDS[("example.com", qtype)])
    if qtype == "A":
        assert addresses(first) == ["93.184.216.34"]


@pytest.mark.parametrize("mangle", BROKEN)
async def test_with_no_good_upstream_the_client_gets_servfail_and_nothing_is_cached(
    mangle: Mangle,
) -> None:
    async with FakeUpstream(RECORDS) as upstream:
        upstream.mangle = mangle
        async with running_proxy(config_for(upstream.address)) as proxy:
            failed = await proxy.query("example.com")
            upstream.mangle = None
            fixed = await proxy.query("example.com")
            calls = upstream.calls
            cached = await proxy.query("example.com")
    assert failed.rcode() == dns.rcode.SERVFAIL
    assert addresses(fixed) == addresses(cached) == ["93.184.216.34"]
    assert upstream.calls == calls  # the good answer is cached; the broken one never was
