"""Batched UDP calls (dns.mmsg): raw sockaddrs to and from what recvfrom gives, and a batch
read, answered and sent on real loopback sockets, IPv4 and IPv6."""

from __future__ import annotations

import asyncio
import select
import socket
from collections.abc import Iterator

import pytest

from filterdns.dns import mmsg

pytestmark = pytest.mark.skipif(not mmsg.available(), reason="no recvmmsg/sendmmsg here")

FAMILIES = [
    pytest.param((socket.AF_INET, "127.0.0.1"), id="ipv4"),
    pytest.param((socket.AF_INET6, "::1"), id="ipv6"),
]


@pytest.mark.parametrize(
    ("family", "peer", "length"),
    [
        pytest.param(socket.AF_INET, ("192.0.2.7", 53000), 16, id="ipv4"),
        pytest.param(socket.AF_INET, ("255.255.255.255", 65535), 16, id="ipv4-highest"),
        pytest.param(socket.AF_INET6, ("2001:db8::1", 5353, 0, 0), 28, id="ipv6"),
        pytest.param(socket.AF_INET6, ("2001:db8::1", 1, 0x12345, 0), 28, id="ipv6-flowinfo"),
        pytest.param(socket.AF_INET6, ("fe80::1%1", 40000, 0, 1), 28, id="ipv6-scoped"),
    ],
)
def test_a_raw_sockaddr_reads_back_as_recvfrom_gives_it(
    family: int, peer: mmsg.Peer, length: int
) -> None:
    raw = mmsg.pack_peer(family, peer)
    assert len(raw) == length
    back = mmsg.unpack_peer(raw)
    assert back[1:] == peer[1:]
    if "%" in peer[0]:  # the scope comes back by its interface's name, as getnameinfo writes
        assert back[0] == "fe80::1%" + socket.if_indextoname(1)
    else:
        assert back[0] == peer[0]


@pytest.fixture(params=FAMILIES)
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[socket.socket, socket.socket]]:
    """A non-blocking server socket and a client socket of one family on loopback."""
    family, host = request.param
    try:
        server = socket.socket(family, socket.SOCK_DGRAM)
        server.bind((host, 0))
    except OSError:
        pytest.skip(f"no {host} here")
    server.setblocking(False)
    client = socket.socket(family, socket.SOCK_DGRAM)
    client.bind((host, 0))
    client.settimeout(2)
    yield server, client
    server.close()
    client.close()


def _wait_readable(sock: socket.socket) -> None:
    assert select.select([sock], [], [], 2)[0], "nothing arrived"


def test_nothing_waiting_reads_as_an_empty_batch(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, _client = pair
    assert mmsg.Batch(server).receive() == []


def test_a_batch_reads_every_datagram_with_its_sender_and_answers_each(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    batch = mmsg.Batch(server, size=8)
    sent = [b"query-%d" % n for n in range(5)]
    for data in sent:
        client.sendto(data, server.getsockname())
    _wait_readable(server)
    got = batch.receive()
    assert [data for data, _raw in got] == sent
    assert {batch.peer(raw) for _data, raw in got} == {client.getsockname()}
    for data, raw in got:
        assert data is not None
        assert batch.queue(b"answer to " + data, raw)
    assert batch.flush() == []
    assert [client.recvfrom(100) for _ in sent] == [
        (b"answer to " + data, server.getsockname()) for data in sent
    ]


def test_no_more_than_a_batch_is_read_in_one_call(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    batch = mmsg.Batch(server, size=4)
    for n in range(6):
        client.sendto(b"%d" % n, server.getsockname())
    _wait_readable(server)
    first = batch.receive()
    rest = batch.receive()
    assert [data for data, _ in first] == [b"0", b"1", b"2", b"3"]
    assert [data for data, _ in rest] == [b"4", b"5"]


def test_a_datagram_longer_than_a_slot_is_marked_cut_not_read_as_whole(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    batch = mmsg.Batch(server, size=4, slot=512)
    client.sendto(b"a" * 100, server.getsockname())
    client.sendto(b"b" * 600, server.getsockname())
    client.sendto(b"c" * 512, server.getsockname())
    _wait_readable(server)
    got = [data for data, _raw in batch.receive()]
    assert got == [b"a" * 100, None, b"c" * 512]


def test_a_failing_send_is_reported_and_the_others_still_go(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    batch = mmsg.Batch(server, size=4)
    good = mmsg.pack_peer(server.family, client.getsockname())
    nowhere = mmsg.pack_peer(server.family, (client.getsockname()[0], 0))  # port 0: EINVAL
    for answer, raw in [(b"one", good), (b"lost", nowhere), (b"two", good)]:
        assert batch.queue(answer, raw)
    failed = batch.flush()
    assert [(addr[:2], type(exc)) for addr, exc in failed] == [
        ((client.getsockname()[0], 0), OSError)
    ]
    assert [client.recv(100) for _ in range(2)] == [b"one", b"two"]
    assert batch.queued == 0


@pytest.mark.parametrize(
    ("size", "slot", "answers", "kept"),
    [
        pytest.param(4, 64, [b"x" * 64], [True], id="fits-exactly"),
        pytest.param(4, 64, [b"x" * 65], [False], id="longer-than-a-slot"),
        pytest.param(2, 64, [b"a", b"b", b"c"], [True, True, False], id="batch-full"),
    ],
)
def test_an_answer_that_does_not_fit_is_left_to_the_caller(
    pair: tuple[socket.socket, socket.socket],
    size: int,
    slot: int,
    answers: list[bytes],
    kept: list[bool],
) -> None:
    server, client = pair
    batch = mmsg.Batch(server, size=size, slot=slot)
    raw = mmsg.pack_peer(server.family, client.getsockname())
    assert [batch.queue(answer, raw) for answer in answers] == kept
    assert batch.flush() == []
    assert [client.recv(100) for _ in range(sum(kept))] == [
        answer for answer, fits in zip(answers, kept, strict=True) if fits
    ]


def test_the_peer_table_starts_over_when_full() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with server:
        batch = mmsg.Batch(server, size=1)
        raws = [mmsg.pack_peer(socket.AF_INET, ("10.0.0.1", port)) for port in range(1, 1100)]
        peers = [batch.peer(raw) for raw in raws]
    assert peers[-1] == ("10.0.0.1", 1099)
    assert len(batch.peers) < 1024


def _answered(
    pair: tuple[socket.socket, socket.socket],
    sent: list[bytes],
    handle: mmsg.Handler,
    slot: int = 64,
) -> tuple[dict[str, int], list[bytes], bool]:
    """Send `sent`, let `Batch.answer` read them and answer with `handle`; the stats, what
    the client got back (in order) and whether the handler's error came through."""
    server, client = pair
    batch = mmsg.Batch(server, size=8, slot=slot)
    for data in sent:
        client.sendto(data, server.getsockname())
    _wait_readable(server)
    stats = {"queries": 0, "dropped": 0}
    loop = asyncio.new_event_loop()  # handed to the handler, never run
    raised = False
    try:
        batch.answer(server, handle, stats, loop)
    except RuntimeError:
        raised = True  # to the loop's exception handler, as from the plain path
    finally:
        loop.close()
    client.settimeout(0.5)
    got = []
    while True:
        try:
            got.append(client.recv(1000))
        except TimeoutError:
            return stats, got, raised


def test_answer_sends_what_is_ready_in_the_batch_and_a_long_answer_alone(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    def handle(_sock: socket.socket, data: bytes, _addr: mmsg.Peer, _loop: object) -> bytes | None:
        if data == b"later":  # a miss: a task answers it, not the batch
            return None
        return b"long " * 40 if data == b"long" else b"re " + data

    stats, got, raised = _answered(pair, [b"a", b"later", b"long", b"b", b"x" * 100], handle)
    assert not raised
    assert sorted(got) == sorted([b"re a", b"re b", b"long " * 40])  # the long one by sendto
    assert stats == {"queries": 1, "dropped": 1}  # the 100-byte datagram: longer than a slot


def test_a_handler_that_raises_holds_up_no_answer_ready_before_it(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    def handle(_sock: socket.socket, data: bytes, _addr: mmsg.Peer, _loop: object) -> bytes | None:
        if data == b"bug":
            raise RuntimeError("a bug")
        return b"re " + data

    _stats, got, raised = _answered(pair, [b"a", b"b", b"c", b"bug", b"d"], handle)
    assert raised
    assert got == [b"re a", b"re b", b"re c"]


@pytest.mark.parametrize("count", [1, 2, 3], ids=["one", "two-by-sendto", "three-batched"])
def test_every_query_of_a_small_batch_is_answered(
    pair: tuple[socket.socket, socket.socket], count: int
) -> None:
    def handle(_sock: socket.socket, data: bytes, _addr: mmsg.Peer, _loop: object) -> bytes | None:
        return b"re " + data

    sent = [b"q%d" % n for n in range(count)]
    _stats, got, _raised = _answered(pair, sent, handle)
    assert got == [b"re " + data for data in sent]
