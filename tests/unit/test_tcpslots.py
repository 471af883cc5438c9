"""TCP connection slots: a cap per client address, a cap in all, and room made fairly."""

from __future__ import annotations

import logging

import pytest

from filterdns.dns.tcpslots import TcpSlots
from tests.integration.harness import FakeClock


class Conn:
    """A stand-in connection; `busy` when it has queries in flight."""

    def __init__(self, name: str, busy: bool = False) -> None:
        self.name = name
        self.busy = busy

    def __repr__(self) -> str:
        return self.name


def busy(conn: Conn) -> bool:
    return conn.busy


def fill(sut: TcpSlots[Conn], ip: str, count: int) -> list[Conn]:
    conns = [Conn(f"{ip}#{i}") for i in range(count)]
    for conn in conns:
        assert sut.admit(ip, conn, busy) == (True, None)
    return conns


def test_one_address_gets_its_cap_and_no_more_while_others_get_theirs() -> None:
    sut: TcpSlots[Conn] = TcpSlots(total=10, per_client=3)
    fill(sut, "10.0.0.1", 3)
    assert sut.admit("10.0.0.1", Conn("over"), busy) == (False, None)
    fill(sut, "10.0.0.2", 3)
    assert (len(sut), sut.held_by("10.0.0.1"), sut.refused_per_client) == (6, 3, 1)


def test_a_closed_connection_frees_its_slot() -> None:
    sut: TcpSlots[Conn] = TcpSlots(total=10, per_client=2)
    first, _second = fill(sut, "10.0.0.1", 2)
    sut.release("10.0.0.1", first)
    sut.release("10.0.0.1", first)  # twice: no harm
    assert sut.admit("10.0.0.1", Conn("again"), busy) == (True, None)
    assert len(sut) == 2


def test_when_all_are_taken_a_newcomer_takes_an_idle_slot_of_the_biggest_holder() -> None:
    sut: TcpSlots[Conn] = TcpSlots(total=6, per_client=4)
    small = fill(sut, "10.0.0.1", 2)
    big = fill(sut, "10.0.0.2", 4)
    big[0].busy = True  # the oldest has a query in flight: an idle one goes first
    newcomer = Conn("new")
    assert sut.admit("10.0.0.3", newcomer, busy) == (True, big[1])
    assert (len(sut), sut.held_by("10.0.0.2"), sut.evicted) == (6, 3, 1)
    sut.release("10.0.0.2", big[1])  # its handler ends later: counted once only
    assert len(sut) == 6
    assert small[0] not in (big[1], newcomer)


def test_every_address_hoarding_cannot_lock_out_a_new_one() -> None:
    sut: TcpSlots[Conn] = TcpSlots(total=256, per_client=16)
    for host in range(20):  # 320 wanted: the pool fills, then hoarders make room for each other
        for index in range(16):
            sut.admit(f"10.0.1.{host}", Conn(f"{host}#{index}"), busy)
    assert len(sut) == 256
    admitted, room = sut.admit("10.0.0.9", Conn("victim"), busy)
    assert admitted and room is not None
    assert len(sut) == 256


def test_a_full_pool_of_equal_holders_refuses_a_newcomer() -> None:
    sut: TcpSlots[Conn] = TcpSlots(total=4, per_client=3)
    for host in range(4):
        fill(sut, f"10.0.0.{host}", 1)
    assert sut.admit("10.0.0.9", Conn("late"), busy) == (False, None)
    assert sut.refused_full == 1


def test_only_busy_connections_left_the_oldest_makes_room() -> None:
    sut: TcpSlots[Conn] = TcpSlots(total=3, per_client=3)
    conns = fill(sut, "10.0.0.1", 3)
    for conn in conns:
        conn.busy = True
    assert sut.admit("10.0.0.2", Conn("new"), busy) == (True, conns[0])


def test_an_address_over_its_cap_is_named_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    sut: TcpSlots[Conn] = TcpSlots(total=100, per_client=1, clock=clock)
    fill(sut, "10.0.0.1", 1)
    fill(sut, "10.0.0.2", 1)
    with caplog.at_level(logging.WARNING):
        for _ in range(50):
            sut.admit("10.0.0.1", Conn("x"), busy)
        sut.admit("10.0.0.2", Conn("y"), busy)
        clock.now += 61
        sut.admit("10.0.0.1", Conn("z"), busy)
    named = [r.getMessage() for r in caplog.records]
    assert len(named) == 3
    assert "client 10.0.0.1 holds 1 TCP connections" in named[0]
    assert "server.max_tcp_connections_per_client" in named[0]
    assert "10.0.0.2" in named[1]
