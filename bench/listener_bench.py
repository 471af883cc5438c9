"""The UDP listener's own cost per datagram, by how many datagrams a wake-up finds waiting.

    cd /tmp && PYTHONPATH=TREE taskset -c 0 TREE/.venv/bin/python TREE/bench/listener_bench.py

The plain loop of `DnsServer._on_readable` (`recvfrom` until EAGAIN, `sendto` each answer)
against `dns.mmsg.Batch.answer` (one `recvmmsg`, one `sendmmsg`), both with a handler that
answers every 40-byte query at once with 60 bytes, on loopback; the client's socket is drained
outside the clock. Prints the median µs per datagram of each and their ratio for 1, 2, 4, 16
and 64 datagrams a wake-up.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
from collections.abc import Callable

from filterdns.dns import mmsg

ANSWER = b"y" * 60


def handle(_sock: socket.socket, _data: bytes, _addr: mmsg.Peer, _loop: object) -> bytes | None:
    """A handler that has every answer ready."""
    return ANSWER


def main() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.setblocking(False)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.setblocking(False)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    target = server.getsockname()
    batch = mmsg.Batch(server, 64)
    loop = asyncio.new_event_loop()
    stats = {"queries": 0, "dropped": 0}

    def plain() -> None:
        for _ in range(64):
            try:
                data, addr = server.recvfrom(65535)
            except BlockingIOError:
                return
            out = handle(server, data, addr, loop)
            if out is not None:
                mmsg.send_one(server, out, addr)

    def batched() -> None:
        batch.answer(server, handle, stats, loop)

    def drain() -> None:
        try:
            while True:
                client.recv(100)
        except BlockingIOError:
            pass

    for count in (1, 2, 4, 16, 64):
        runs: dict[Callable[[], None], list[float]] = {plain: [], batched: []}
        for _ in range(400 if count < 16 else 100):
            for way, spent in runs.items():
                for _ in range(count):
                    client.sendto(b"x" * 40, target)
                started = time.perf_counter()
                way()
                spent.append(time.perf_counter() - started)
                drain()
        one, many = (statistics.median(runs[way]) for way in (plain, batched))
        print(
            f"{count:2} a wake-up: plain {one / count * 1e6:5.2f} µs/datagram,"
            f" batched {many / count * 1e6:5.2f} µs/datagram, batched/plain {many / one:.2f}"
        )
    loop.close()


if __name__ == "__main__":
    main()
