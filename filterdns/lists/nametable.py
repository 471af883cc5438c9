"""The name model's weights in a few flat arrays: about 3 MB instead of 34 MB of dicts.

A feature (a short string) is keyed by its UTF-8 bytes read as a little-endian integer, modulo
the prime 2**61 - 1: exact for the n-grams (at most 7 bytes), a 61-bit hash for longer words. The
keys go into a hash-and-displace table (Pagh's scheme, the buckets' displacements found when the
table is built): a key's slot is `(key + displacement[key % buckets]) % size`, so a lookup is two
C-level indexings and no probing; the key stored in the slot tells a model feature from any
other. Weights are 16-bit integers per category (the training rounds them to 0.001: `SCALE`),
zero in the empty slots and in slot 0, which no key gets.

Every step of a lookup runs in C over the whole feature list (`map`, `itemgetter` on arrays),
as the dict lookups it replaces did: scoring a site costs what it did (bench/namemodel_bench.py).
Python's own `hash()` of a string changes with every process, so it cannot key a stored table.
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from collections.abc import Mapping, Sequence
from itertools import compress, repeat
from operator import add, eq, itemgetter, mod
from typing import BinaryIO

PRIME = (1 << 61) - 1
SCALE = 0.001  # a stored weight is an integer number of thousandths
EMPTY = (1 << 64) - 1  # the key of a slot no feature holds (no key reaches it: keys < PRIME)
LOAD = 0.9  # keys per slot
BUCKET = 5  # keys per bucket (on average)
MAX_SLOTS = 1 << 26  # a header asking for more is damaged (the shipped table has 220,613)
MAX_CATEGORIES = 64
_HEADER = struct.Struct("<IIII")  # size, buckets, categories, CRC-32 of the arrays
_LITTLE = sys.byteorder == "little"


def key(feature: str) -> int:
    """A feature's key: its UTF-8 bytes as a little-endian integer, modulo PRIME."""
    return int.from_bytes(feature.encode(), "little") % PRIME


class WeightTable:
    """Per-category weights of string features, looked up in C (see the module docstring)."""

    __slots__ = ("_buckets", "_size", "displacements", "keys", "weights")

    def __init__(
        self, keys: array[int], displacements: array[int], weights: tuple[array[int], ...]
    ) -> None:
        self.keys = keys  # "Q": the key in each slot, EMPTY where none
        self.displacements = displacements  # "I": per bucket
        self.weights = weights  # "h": per category, thousandths per slot
        self._size = repeat(len(keys))
        self._buckets = repeat(len(displacements))

    @property
    def size(self) -> int:
        """The number of slots."""
        return len(self.keys)

    def count(self) -> int:
        """The number of weights that are not zero (as the training counts them)."""
        return sum(len(w) - w.count(0) for w in self.weights)

    def sums(self, keys: list[int]) -> tuple[float, ...]:
        """Per category, the sum of the weights of the features keyed `keys` (two at least)."""
        moves = itemgetter(*map(mod, keys, self._buckets))(self.displacements)
        slots = list(map(mod, map(add, keys, moves), self._size))
        # The slots that hold their key; slot 0 (weights zero) twice, so there are two at least.
        hits = compress(slots, map(eq, itemgetter(*slots)(self.keys), keys))
        found = itemgetter(0, 0, *hits)
        return tuple(sum(found(w)) * SCALE for w in self.weights)

    def to_bytes(self) -> bytes:
        """The table as stored (little-endian; see `read`)."""
        arrays = [_little(a) for a in (self.keys, self.displacements, *self.weights)]
        body = b"".join(a.tobytes() for a in arrays)
        head = (len(self.keys), len(self.displacements), len(self.weights), zlib.crc32(body))
        return _HEADER.pack(*head) + body


def _little(data: array[int]) -> array[int]:
    """`data` in little-endian order (a copy on a big-endian machine)."""
    if _LITTLE:
        return data
    swapped = array(data.typecode, data)
    swapped.byteswap()
    return swapped


def read(stream: BinaryIO) -> WeightTable:
    """A table from a stream at its header; ValueError when the file is cut short or damaged."""
    head = stream.read(_HEADER.size)
    if len(head) != _HEADER.size:
        raise ValueError("cut short in the weight table's header")
    size, buckets, categories, crc = _HEADER.unpack(head)
    if not (buckets <= size <= MAX_SLOTS and categories <= MAX_CATEGORIES):
        raise ValueError("damaged (the weight table's header is out of bounds)")
    parts = [("Q", size), ("I", buckets)] + [("h", size)] * categories
    arrays: list[array[int]] = []
    checked = 0
    for typecode, count in parts:
        data = array(typecode)
        try:
            data.fromfile(stream, count)
        except (EOFError, ValueError):  # ValueError: it ends inside an item
            raise ValueError("cut short in the weight table") from None
        checked = zlib.crc32(data, checked)  # the bytes as stored
        arrays.append(_little(data))
    if checked != crc:
        raise ValueError("damaged (the weight table's CRC-32 does not match)")
    return WeightTable(arrays[0], arrays[1], tuple(arrays[2:]))


def build(weights: Sequence[Mapping[str, float]]) -> WeightTable:
    """The table of per-category feature weights (rounded to SCALE; a weight's magnitude must
    stay under 32.768). The same weights always give the same table."""
    features = sorted(set().union(*weights))
    keys = [key(f) for f in features]
    if len(set(keys)) != len(keys):
        raise ValueError("two features share a key")
    size = _prime(int(len(keys) / LOAD) + 2)
    placed = _place(keys, size, _prime(len(keys) // BUCKET + 1))
    while placed is None:  # a bucket does not fit: another size
        size = _prime(size + 1)
        placed = _place(keys, size, _prime(len(keys) // BUCKET + 1))
    slots, displacements = placed
    table = array("Q", [EMPTY]) * size
    columns = [array("h", bytes(2 * size)) for _ in weights]
    for feature, k, slot in zip(features, keys, slots, strict=True):
        table[slot] = k
        for column, category in zip(columns, weights, strict=True):
            column[slot] = _thousandths(category.get(feature, 0.0))
    return WeightTable(table, displacements, tuple(columns))


def _thousandths(weight: float) -> int:
    value = round(weight / SCALE)
    if not -32768 <= value <= 32767:
        raise ValueError(f"weight {weight} out of the table's range")
    return value


def _place(keys: list[int], size: int, buckets: int) -> tuple[list[int], array[int]] | None:
    """(the slot of each key, the displacement of each bucket), or None when two keys of a
    bucket have the same home slot or no displacement fits. Big buckets first, each at its
    smallest displacement."""
    members: dict[int, list[int]] = {}
    for index, k in enumerate(keys):
        members.setdefault(k % buckets, []).append(index)
    taken = bytearray(size)
    taken[0] = 1  # slot 0: the slot of every feature the model does not have
    displacements = array("I", bytes(4 * buckets))
    slots = [0] * len(keys)
    for bucket in sorted(members, key=lambda b: (-len(members[b]), b)):
        homes = [keys[i] % size for i in members[bucket]]
        if len(set(homes)) != len(homes):
            return None
        move = _free(homes, taken, size)
        if move < 0:
            return None
        displacements[bucket] = move
        for index, home in zip(members[bucket], homes, strict=True):
            slots[index] = (home + move) % size
            taken[slots[index]] = 1
    return slots, displacements


def _free(homes: list[int], taken: bytearray, size: int) -> int:
    """The smallest displacement that puts every home on a free slot (-1: none does)."""
    for move in range(size):
        if not any(taken[(home + move) % size] for home in homes):
            return move
    return -1


def _prime(at_least: int) -> int:
    """The smallest prime not below `at_least`."""
    candidate = max(2, at_least)
    while any(candidate % d == 0 for d in range(2, int(candidate**0.5) + 1)):
        candidate += 1
    return candidate
