"""Hostile DNS packets: real-looking queries, then broken in the ways attackers and bugs break them.

Used by the fuzz tests (a few thousand packets) and by `make stress` (a million and more):

    rng = random.Random(7)
    for packet in hostile_packets(rng, 10_000):
        ...

Half of the packets are mutated queries (truncated anywhere, bytes flipped, counts that lie,
label pointer loops, oversized or reserved label types, OPT records with options of every kind,
trailing garbage), a quarter are well-formed queries of every type and class, the rest random
bytes.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterator

_ALPHABET = b"abcdefghijklmnopqrstuvwxyz0123456789-_ABCDEFGHIJKLMNOPQRSTUVWXYZ.\x00\xff*"
_QTYPES = (1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 43, 48, 64, 65, 251, 252, 255, 0, 65535)
_QCLASSES = (1, 1, 1, 3, 4, 254, 255, 0, 65535)


def _label(rng: random.Random) -> bytes:
    size = rng.choice((1, 3, 7, 12, 20, 63))
    return bytes(rng.choice(_ALPHABET) for _ in range(size))


def _name(rng: random.Random) -> bytes:
    labels = [_label(rng) for _ in range(rng.randint(0, 5))]
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


def _option(rng: random.Random) -> bytes:
    code = rng.choice((3, 8, 10, 12, 15, 65001, rng.randrange(65536)))
    payload = bytes(rng.randrange(256) for _ in range(rng.choice((0, 2, 8, 40))))
    return struct.pack("!HH", code, len(payload)) + payload


def valid_query(rng: random.Random) -> bytes:
    """A well-formed query of any type and class, often with EDNS (any size, DO, options)."""
    flags = rng.choice((0x0100, 0x0100, 0x0000, 0x0110, 0x0120, 0x2900))
    question = _name(rng) + struct.pack("!HH", rng.choice(_QTYPES), rng.choice(_QCLASSES))
    if rng.random() < 0.6:
        options = b"".join(_option(rng) for _ in range(rng.choice((0, 0, 1, 3))))
        size = rng.choice((0, 512, 1232, 4096, 65535))
        version = rng.choice((0, 0, 0, 1, 255))
        ttl = (version << 16) | rng.choice((0, 0x8000))
        opt = b"\x00" + struct.pack("!HHIH", 41, size, ttl, len(options)) + options
        header = struct.pack("!6H", rng.randrange(65536), flags, 1, 0, 0, 1)
        return header + question + opt
    return struct.pack("!6H", rng.randrange(65536), flags, 1, 0, 0, 0) + question


def _truncate(rng: random.Random, packet: bytearray) -> bytearray:
    return packet[: rng.randrange(len(packet) + 1)]


def _flip(rng: random.Random, packet: bytearray) -> bytearray:
    for _ in range(rng.randint(1, 4)):
        if packet:
            packet[rng.randrange(len(packet))] = rng.randrange(256)
    return packet


def _lying_counts(rng: random.Random, packet: bytearray) -> bytearray:
    if len(packet) >= 12:
        field = rng.choice((4, 6, 8, 10))
        packet[field : field + 2] = struct.pack("!H", rng.choice((0, 2, 255, 65535)))
    return packet


def _pointer_loop(rng: random.Random, packet: bytearray) -> bytearray:
    at = rng.randrange(12, max(13, len(packet)))
    return packet[:at] + bytearray(b"\xc0" + bytes([at & 0xFF])) + packet[at:]


def _bad_label(rng: random.Random, packet: bytearray) -> bytearray:
    if len(packet) > 12:
        packet[12] = rng.choice((0x40, 0x80, 0x7F, 0xFF, 64))
    return packet


def _garbage_tail(rng: random.Random, packet: bytearray) -> bytearray:
    return packet + bytearray(rng.randrange(256) for _ in range(rng.choice((1, 7, 300))))


def _as_response(rng: random.Random, packet: bytearray) -> bytearray:
    if len(packet) > 2:
        packet[2] |= 0x80  # QR: a response sent to the query port
    return packet


MUTATIONS: tuple[Callable[[random.Random, bytearray], bytearray], ...] = (
    _truncate,
    _flip,
    _lying_counts,
    _pointer_loop,
    _bad_label,
    _garbage_tail,
    _as_response,
)


def mutated_query(rng: random.Random) -> bytes:
    """A valid query broken by one to three mutations."""
    packet = bytearray(valid_query(rng))
    for _ in range(rng.randint(1, 3)):
        packet = rng.choice(MUTATIONS)(rng, packet)
    return bytes(packet)


def hostile_packets(rng: random.Random, count: int) -> Iterator[bytes]:
    """`count` packets: mutated queries, well-formed ones of every kind, and random bytes."""
    for _ in range(count):
        roll = rng.random()
        if roll < 0.5:
            yield mutated_query(rng)
        elif roll < 0.75:
            yield valid_query(rng)
        else:
            yield bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 11, 12, 13, 40, 512))))
