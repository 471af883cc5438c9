"""The compact domain index's words and file: the hash, the header, the checks.

Shared by the index (`lists.index`, which opens and maps the file) and its builder
(`lists.indexbuild`, which writes it); the layout is described in `lists.index`.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
import zlib
from array import array
from dataclasses import dataclass
from io import BufferedReader
from typing import IO, Any

MAGIC = b"FDNSIDX1"
VERSION = 2  # 2: the meta holds the lists' regex rules
HASH_BITS = 48
LIST_BITS = 16
MAX_LISTS = 1 << LIST_BITS

# magic, version, meta length, entry count, crc32 of entries and directory, directory bits
HEADER = struct.Struct("<8sIIQII")
LIST_MASK = MAX_LISTS - 1
DIR_BITS = 16  # the directory keys runs of words by at most their top 16 bits
MAX_META = 1 << 26  # a header claiming more than 64 MiB of JSON is corrupt
READ_CHUNK = 1 << 18  # the checksum is computed reading 256 KiB at a time
LITTLE = sys.byteorder == "little"

blake2b = hashlib.blake2b
from_bytes = int.from_bytes


def name_hash(name: str) -> int:
    """The stable 48-bit hash of a normalised text name (the top bits of its index words)."""
    return from_bytes(blake2b(name.encode(), digest_size=6).digest(), "big")


def false_positive_rate(names: int) -> float:
    """The chance that one probe of an unlisted name matches an index of `names` distinct names."""
    return names / float(1 << HASH_BITS)


@dataclass(frozen=True, slots=True)
class ListInfo:
    """One list in the index: its category, where it came from, and whether it allows."""

    category: str
    source: str
    allow: bool = False


@dataclass(frozen=True, slots=True)
class RegexEntry:
    """A regex rule of one list: its pattern (without slashes) and the line it was read from."""

    list_id: int
    pattern: str
    line: int


Layout = tuple[int, int, int, tuple[ListInfo, ...], str, tuple[RegexEntry, ...]]
"""Where an index file's parts are: entry offset, entry count, directory length, then its meta:
lists, fingerprint and regex rules."""


def write_le(f: IO[bytes], values: array[int], crc: int) -> int:
    """Write an array little-endian and return the running crc32 of what was written."""
    if not LITTLE:
        values = array(values.typecode, values)
        values.byteswap()
    values.tofile(f)
    return zlib.crc32(values, crc)


def data_offset(meta_len: int) -> int:
    """Where the entries start: after the header and the meta, rounded up to 8 bytes."""
    return (HEADER.size + meta_len + 7) & ~7


def check_file(f: BufferedReader, fingerprint: str | None) -> Layout | None:
    """Validate an index file: where its entries and directory are, and its meta.

    None when the header, the size, the meta, the fingerprint or the checksum is wrong.
    """
    size = os.fstat(f.fileno()).st_size
    header = f.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    magic, version, meta_len, count, crc, bits = HEADER.unpack(header)
    if magic != MAGIC or version != VERSION or meta_len > MAX_META or bits > DIR_BITS:
        return None
    offset = data_offset(meta_len)
    dir_len = (1 << bits) + 1
    if size != offset + 8 * count + 4 * dir_len:
        return None
    parsed = parse_meta(f.read(meta_len))
    if parsed is None:
        return None
    found, lists, regexes = parsed
    if fingerprint is not None and found != fingerprint:
        return None
    f.seek(offset)
    buffer = memoryview(bytearray(READ_CHUNK))
    seen = 0
    while read := f.readinto(buffer):
        seen = zlib.crc32(buffer[:read], seen)
    if seen != crc:
        return None
    return offset, count, dir_len, lists, found, regexes


def parse_meta(
    raw: bytes,
) -> tuple[str, tuple[ListInfo, ...], tuple[RegexEntry, ...]] | None:
    """The fingerprint, list table and regex rules of a file header, or None when malformed."""
    try:
        meta: Any = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(meta, dict):
        return None
    fingerprint = meta.get("fingerprint")
    table = meta.get("lists")
    if not isinstance(fingerprint, str) or not isinstance(table, list):
        return None
    if len(table) > MAX_LISTS:
        return None
    lists: list[ListInfo] = []
    for item in table:
        if not isinstance(item, dict):
            return None
        category, source, allow = item.get("category"), item.get("source"), item.get("allow")
        if not (isinstance(category, str) and isinstance(source, str) and isinstance(allow, bool)):
            return None
        lists.append(ListInfo(category, source, allow))
    regexes = _parse_regexes(meta.get("regexes"), len(lists))
    if regexes is None:
        return None
    return fingerprint, tuple(lists), regexes


def _parse_regexes(table: object, lists: int) -> tuple[RegexEntry, ...] | None:
    """The `regexes` of the meta: [[list id, pattern, line], ...]; None when malformed."""
    if not isinstance(table, list):
        return None
    found: list[RegexEntry] = []
    for item in table:
        if not (isinstance(item, list) and len(item) == 3):
            return None
        list_id, pattern, line = item
        if not (isinstance(list_id, int) and 0 <= list_id < lists and isinstance(pattern, str)):
            return None
        if not isinstance(line, int):
            return None
        found.append(RegexEntry(list_id, pattern, line))
    return tuple(found)


def meta_json(fingerprint: str, lists: tuple[ListInfo, ...], regexes: list[RegexEntry]) -> bytes:
    """The meta of an index file, as `parse_meta` reads it."""
    return json.dumps(
        {
            "fingerprint": fingerprint,
            "lists": [
                {"category": x.category, "source": x.source, "allow": x.allow} for x in lists
            ],
            "regexes": [[r.list_id, r.pattern, r.line] for r in regexes],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
