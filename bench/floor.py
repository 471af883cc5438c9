"""The Python floor: a UDP responder doing only what any Python DNS server must do per query.

    taskset -c 0 .venv/bin/python bench/floor.py [reader|protocol] PORT
    taskset -c 1 dnsperf -s 127.0.0.1 -p PORT -d QUERIES -l 15 -c 10 -q 200 -t 1

It reads a datagram, answers A 192.0.2.1 for its question and sends it, on uvloop: with
`loop.add_reader` + `recvfrom` + `sendto` (as filterdns's server reads) or with a datagram
protocol. Whatever filterdns does per query comes on top of this (bench/PROFILE.md).
"""

from __future__ import annotations

import asyncio
import socket
import sys

import uvloop

RECORD = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04" + socket.inet_aton("192.0.2.1")


def answer(data: bytes) -> bytes:
    end = 12
    while end < len(data) and data[end]:
        end += data[end] + 1
    end += 5
    return data[:2] + b"\x81\x80" + data[4:6] + b"\x00\x01\x00\x00\x00\x00" + data[12:end] + RECORD


class Responder(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(answer(data), addr)


async def main(mode: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    if mode == "protocol":
        await loop.create_datagram_endpoint(Responder, local_addr=("127.0.0.1", port))
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", port))
        sock.setblocking(False)

        def readable() -> None:
            for _ in range(64):
                try:
                    data, addr = sock.recvfrom(65535)
                except BlockingIOError:
                    return
                sock.sendto(answer(data), addr)

        loop.add_reader(sock.fileno(), readable)
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1], int(sys.argv[2])))
