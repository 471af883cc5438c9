"""The compact domain index: every listed name of every list in one sorted array of 64-bit words.

A listed name blocks (or, for an allow list, allows) itself and all its subdomains, so a lookup
walks the suffixes of the query: "a.b.example.com" probes "a.b.example.com", "b.example.com" and
"example.com", and reports every (suffix, list) pair found, most specific suffix first. One index
holds all lists at once, so a single walk answers "which lists, hence which categories and
sources, hold this name or a parent of it".

Entry layout
------------
Each entry is one unsigned 64-bit word::

    bits 63..16  blake2b(name, digest_size=6): 48 bits, the same in every process
    bits 15..0   the list id, an index into `DomainIndex.lists`

The entries are sorted, so every list holding one name sits in a run of adjacent words
``[h << 16, (h + 1) << 16)``, found with one bisection. A name in three lists costs three words;
a million names cost 8 MB, against well over 100 MB for a Python set of the same strings.

A directory shortens the bisection: for each run of words sharing their top k bits (k chosen
for about 16 entries per run, at most 16, so at most 2**16 + 1 four-byte slots, 256 KiB), the
position of its first word. It is computed while the entries are written and stored after them.
A lookup hashes each suffix (blake2b, under a microsecond) and bisects about 16 words.

False positives
---------------
Only hashes are stored, so a name that is not listed matches when its 48-bit hash equals the
hash of a listed name. With n distinct listed names one probe of an unlisted suffix matches with
probability n / 2**48: about 3.6e-9 for n = 1,000,000, and a query of three labels makes two
probes. A million unlisted queries of 3-4 labels are expected to give about 0.009 false matches
(`false_positive_rate` computes the figure). Two listed names sharing a hash (probability about
n**2 / 2**49, 0.002 for a million names) merge: each reports the other's lists as well.

Single-label suffixes are never probed: the last label of a query ("com" in "www.example.com")
is skipped, which saves a hash and a bisection per lookup. The builder therefore refuses a name
without a dot; the list parsers drop such lines anyway, since a blocklist entry "com" would block
a whole top-level domain.

Building and persisting
-----------------------
`IndexBuilder` streams words into 256 `array("Q")` buckets keyed by their top 8 bits, then sorts
one bucket at a time, drops repeated words (the same name twice in one list, counted per list in
`IndexBuilder.duplicates`) and appends the bucket to the output, freeing it at once. No list of
every name or word is ever held: at most the words (8 bytes each) and one bucket as Python ints.
Given a `spill_dir`, the buckets move to an unnamed temporary file there every 2 MiB, so the
build itself stays within a few megabytes. `discard(list_id)` leaves out, at `finish`, every
name a list received: a source is judged after it was streamed in, and a rejected one must add
nothing. Given a path, the output goes straight to a file that
is then memory-mapped: a restart opens it in milliseconds instead of re-parsing the sources, and
opening reads the checksum through the file rather than the mapping, so the new index's pages
join the process only as lookups touch them. A rebuild next to a serving index therefore peaks
near the old index plus a few megabytes, and the old pages leave with `close`. Without a path the
index lives in an `array("Q")`, for tests and small configurations.

The file is::

    offset 0   magic b"FDNSIDX1", u32 version, u32 meta length, u64 entry count,
               u32 crc32 of the entries and directory, u32 directory bits k
               (32 bytes, little-endian)
    offset 32  meta: UTF-8 JSON {"fingerprint": str, "lists": [{"category", "source", "allow"}]}
               padded with spaces to a multiple of 8
    then       the entries, packed little-endian uint64, 8-byte aligned
    then       the directory, 2**k + 1 little-endian uint32

It is written to a temporary file in the same directory and moved over the old one with
`os.replace`, so a crash leaves either the old file or the new one, never half a file. The
fingerprint is the caller's summary of the sources (paths, sizes, modification times, ETags):
`DomainIndex.open` returns None when it differs, and the caller rebuilds. A big-endian host
loads the file into memory, byte-swapped, instead of mapping it.

Threads: `IndexBuilder.finish` is CPU-bound and meant to run in a worker thread. The caller
swaps the new index in with one assignment, then closes the old one; `match` never awaits, so
on the event loop no lookup can be running on the old index when it is closed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import struct
import sys
import tempfile
import weakref
import zlib
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from io import BufferedReader
from itertools import islice
from pathlib import Path
from typing import IO, Any

MAGIC = b"FDNSIDX1"
VERSION = 1
HASH_BITS = 48
LIST_BITS = 16
MAX_LISTS = 1 << LIST_BITS

# magic, version, meta length, entry count, crc32 of entries and directory, directory bits
_HEADER = struct.Struct("<8sIIQII")
_LIST_MASK = MAX_LISTS - 1
_BUCKETS = 256  # build buckets, keyed by the top 8 bits of a word
_BUCKET_SHIFT = 64 - 8
_BATCH = 1 << 16  # names hashed between two checks of the spill threshold
_SPILL_WORDS = 1 << 18  # with a spill directory, move the buckets to disk past 2 MiB
_DIR_BITS = 16  # the directory keys runs of words by at most their top 16 bits
_MAX_META = 1 << 26  # a header claiming more than 64 MiB of JSON is corrupt
_READ_CHUNK = 1 << 18  # the checksum is computed reading 256 KiB at a time
_LITTLE = sys.byteorder == "little"

_blake2b = hashlib.blake2b
_from_bytes = int.from_bytes


def name_hash(name: str) -> int:
    """The stable 48-bit hash of a normalised text name (the top bits of its index words)."""
    return _from_bytes(_blake2b(name.encode(), digest_size=6).digest(), "big")


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
class Match:
    """One hit: the listed name (a suffix of the query, or the query itself) and its list."""

    name: str
    list_id: int


class DomainIndex:
    """A sorted array of (name hash, list id) words, in memory or memory-mapped from a file."""

    __slots__ = (
        "_directory",
        "_entries",
        "_mmap",
        "_shift",
        "_size",
        "_views",
        "fingerprint",
        "lists",
    )

    def __init__(
        self,
        entries: Sequence[int],
        directory: Sequence[int],
        lists: tuple[ListInfo, ...],
        fingerprint: str = "",
        *,
        mapped: mmap.mmap | None = None,
        views: tuple[memoryview, ...] = (),
    ) -> None:
        """Wrap sorted entries and their directory; use `IndexBuilder.finish`, `open`, `empty`.

        `directory` has 2**k + 1 items; `mapped` and `views` are released by `close`.
        """
        self._entries = entries
        self._directory = directory
        self._shift = 64 - (len(directory) - 1).bit_length() + 1
        self._size = len(entries)
        self._mmap = mapped
        self._views = views
        self.lists = lists
        self.fingerprint = fingerprint

    @classmethod
    def empty(cls) -> DomainIndex:
        """An index holding nothing: every lookup misses."""
        return cls(array("Q"), array("I", [0, 0]), ())

    @classmethod
    def open(cls, path: Path, fingerprint: str | None = None) -> DomainIndex | None:
        """Map an index file; None when it is missing, corrupt, of another version or stale.

        `fingerprint`, when given, must equal the one the file was written with. The checksum
        is verified by reading the file, not through the mapping, so opening does not make the
        index resident: its pages join the process as lookups touch them.
        """
        try:
            with path.open("rb") as f:
                layout = _check_file(f, fingerprint)
                if layout is None:
                    return None
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None
        offset, count, dir_len, lists, found = layout
        base = memoryview(mapped)
        entries = base[offset : offset + 8 * count]
        directory = base[offset + 8 * count : offset + 8 * count + 4 * dir_len]
        if _LITTLE:
            views = (entries.cast("Q"), directory.cast("I"), entries, directory, base)
            return cls(views[0], views[1], lists, found, mapped=mapped, views=views)
        # A big-endian host reads the little-endian file into memory instead of mapping it.
        words, slots = array("Q", entries.tobytes()), array("I", directory.tobytes())
        words.byteswap()
        slots.byteswap()
        for view in (entries, directory, base):
            view.release()
        mapped.close()
        return cls(words, slots, lists, found)

    def __len__(self) -> int:
        """The number of entries: one per (name, list) pair."""
        return self._size

    @property
    def nbytes(self) -> int:
        """The size of the entry array in bytes (the directory adds at most 256 KiB)."""
        return 8 * self._size

    def match(self, name: str) -> list[Match]:
        """Every (listed suffix, list) pair for a normalised name, most specific suffix first.

        Within one suffix the lists come in id order. The last label is never probed (see the
        module docstring), so a single-label name matches nothing.
        """
        out: list[Match] = []
        if not self._size:
            return out
        entries = self._entries
        directory = self._directory
        shift = self._shift
        raw = name.encode()  # "." never occurs inside a multi-byte UTF-8 sequence
        pos = 0
        dot = raw.find(46)  # b"."
        while dot >= 0:
            key = _from_bytes(_blake2b(raw[pos:], digest_size=6).digest(), "big") << 16
            slot = key >> shift
            hi = directory[slot + 1]
            i = bisect_left(entries, key, directory[slot], hi)
            end = key | _LIST_MASK
            if i < hi and entries[i] <= end:
                suffix = raw[pos:].decode() if pos else name
                while i < hi and (word := entries[i]) <= end:
                    out.append(Match(suffix, word & _LIST_MASK))
                    i += 1
            pos = dot + 1
            dot = raw.find(46, pos)
        return out

    def lists_for(self, name: str) -> set[int]:
        """The ids of every list holding the name or one of its parents."""
        return {m.list_id for m in self.match(name)}

    def close(self) -> None:
        """Release the mapping; later lookups miss. Swap the new index in before closing."""
        self._entries = array("Q")
        self._directory = array("I", [0, 0])
        self._shift = 64
        self._size = 0
        for view in self._views:
            view.release()
        self._views = ()
        if self._mmap is not None:
            self._mmap.close()
            self._mmap = None

    def __repr__(self) -> str:
        where = "mapped" if self._mmap is not None else "in memory"
        return f"<DomainIndex {self._size} entries, {len(self.lists)} lists, {where}>"


class IndexBuilder:
    """Collects (list, name) pairs and turns them into a `DomainIndex` (see the module docs).

    `spill_dir`, usually the directory of the index file, moves the words collected so far to
    an unnamed temporary file there every `_SPILL_WORDS` words, so a build holds at most a few
    megabytes whatever the number of names. Without it the words stay in memory (8 bytes each).
    """

    def __init__(self, spill_dir: Path | None = None) -> None:
        self._lists: list[ListInfo] = []
        self._buckets: list[array[int]] | None = [array("Q") for _ in range(_BUCKETS)]
        self._words = 0  # words added so far, repeats included
        self._buffered = 0  # words in the buckets since the last spill
        self._spill_dir = spill_dir
        self._spill: IO[bytes] | None = None
        self._spill_end = 0
        self._chunks: list[list[tuple[int, int]]] = [[] for _ in range(_BUCKETS)]
        self._close_spill: Callable[[], object] = lambda: None
        self._directory = array("I")
        self._discarded: set[int] = set()
        self.duplicates: dict[int, int] = {}
        """After `finish`: per list id, how many names were dropped as repeats within that list."""

    def add_list(self, info: ListInfo) -> int:
        """Register a list and return its id; at most 65,536 lists fit the 16-bit id."""
        if len(self._lists) >= MAX_LISTS:
            raise ValueError(f"too many lists for one index: at most {MAX_LISTS}")
        self._lists.append(info)
        return len(self._lists) - 1

    def add(self, list_id: int, name: str) -> None:
        """Add one normalised name to a list (`add_many` saves the per-call cost)."""
        buckets = self._open_buckets()
        if not 0 <= list_id < len(self._lists):
            raise ValueError(f"unknown list id {list_id}")
        if "." not in name:
            raise ValueError(f"{name!r}: a listed name needs at least two labels")
        word = (_from_bytes(_blake2b(name.encode(), digest_size=6).digest(), "big") << 16) | list_id
        buckets[word >> _BUCKET_SHIFT].append(word)
        self._words += 1
        self._buffered += 1
        if self._buffered >= _SPILL_WORDS and self._spill_dir is not None:
            self._spill_buckets(buckets)

    def add_many(self, list_id: int, names: Iterable[str]) -> int:
        """Add normalised names to a list and return how many were read (repeats included).

        Every name needs at least two labels ("example.com", not "com").
        """
        buckets = self._open_buckets()
        if not 0 <= list_id < len(self._lists):
            raise ValueError(f"unknown list id {list_id}")
        blake2b = _blake2b
        from_bytes = _from_bytes
        shift = _BUCKET_SHIFT
        source = iter(names)
        count = 0
        while True:
            batch = 0
            for name in islice(source, _BATCH):
                if "." not in name:
                    raise ValueError(f"{name!r}: a listed name needs at least two labels")
                word = (from_bytes(blake2b(name.encode(), digest_size=6).digest(), "big") << 16) | (
                    list_id
                )
                buckets[word >> shift].append(word)
                batch += 1
            count += batch
            self._words += batch
            self._buffered += batch
            if self._spill_dir is not None and self._buffered >= _SPILL_WORDS:
                self._spill_buckets(buckets)
            if batch < _BATCH:
                return count

    def discard(self, list_id: int) -> None:
        """Leave out every name added to a list so far and from now on (a rejected source).

        The list keeps its id and its place in the table; it just holds nothing.
        """
        self._open_buckets()
        if not 0 <= list_id < len(self._lists):
            raise ValueError(f"unknown list id {list_id}")
        self._discarded.add(list_id)

    def finish(self, path: Path | None = None, fingerprint: str = "") -> DomainIndex:
        """Sort, drop repeats and return the index: written to `path` and mapped, or in memory.

        The builder cannot be used afterwards.
        """
        buckets = self._open_buckets()
        self._buckets = None
        lists = tuple(self._lists)
        self.duplicates = dict.fromkeys(range(len(lists)), 0)
        try:
            if path is None:
                entries = self._merge_in_memory(buckets)
                return DomainIndex(entries, self._directory, lists, fingerprint)
            self._merge_to_file(buckets, path, lists, fingerprint)
        finally:
            self._close_spill()
            self._chunks = []
        index = DomainIndex.open(path, fingerprint)
        if index is None:  # pragma: no cover - the file was just written and checked
            raise OSError(f"{path}: the index just written could not be read back")
        return index

    def _open_buckets(self) -> list[array[int]]:
        if self._buckets is None:
            raise RuntimeError("the index builder has already finished")
        return self._buckets

    def _spill_buckets(self, buckets: list[array[int]]) -> None:
        """Append every bucket to the spill file as one chunk and empty it."""
        spill = self._spill
        if spill is None:
            # Closed by finish, or by the finalizer when an unfinished builder is dropped.
            spill = self._spill = tempfile.TemporaryFile(dir=self._spill_dir)  # noqa: SIM115
            self._close_spill = weakref.finalize(self, spill.close)
        for bucket, chunks in zip(buckets, self._chunks, strict=True):
            if bucket:
                bucket.tofile(spill)
                chunks.append((self._spill_end, len(bucket)))
                self._spill_end += 8 * len(bucket)
                del bucket[:]
        self._buffered = 0

    def _sorted_buckets(self, buckets: list[array[int]]) -> Iterator[array[int]]:
        """Each bucket in turn (spilled chunks and the rest), sorted, without repeated words.

        A bucket is released before the next is read; repeats are counted per list. Along the
        way the directory is filled in: for each slot, the position of its first word.
        """
        spill = self._spill
        if spill is not None:
            spill.flush()
        duplicates = self.duplicates
        discarded = self._discarded
        bits = max(0, min(_DIR_BITS, self._words.bit_length() - 4))
        shift = 64 - bits
        directory = self._directory = array("I", [0]) * ((1 << bits) + 1)
        pos = 0
        for i, chunks in enumerate(self._chunks):
            words = buckets[i]
            buckets[i] = array("Q")
            if chunks and spill is not None:
                words, tail = array("Q"), words
                for offset, size in chunks:
                    spill.seek(offset)
                    words.fromfile(spill, size)
                words.extend(tail)
                del tail
            if discarded:
                words = array("Q", [w for w in words if w & _LIST_MASK not in discarded])
            unique = set(words)
            if len(unique) != len(words):
                for word, seen in Counter(words).items():
                    if seen > 1:
                        duplicates[word & _LIST_MASK] += seen - 1
            del words
            ordered = sorted(unique)
            del unique
            # the slots whose first possible word falls in this bucket
            first, stop = -(-i << _BUCKET_SHIFT >> shift), -(-(i + 1) << _BUCKET_SHIFT >> shift)
            for slot in range(first, stop):
                directory[slot] = pos + bisect_left(ordered, slot << shift)
            pos += len(ordered)
            yield array("Q", ordered)
        directory[-1] = pos

    def _merge_in_memory(self, buckets: list[array[int]]) -> array[int]:
        out = array("Q", [0]) * self._words
        pos = 0
        for words in self._sorted_buckets(buckets):
            out[pos : pos + len(words)] = words
            pos += len(words)
        del out[pos:]
        return out

    def _merge_to_file(
        self,
        buckets: list[array[int]],
        path: Path,
        lists: tuple[ListInfo, ...],
        fingerprint: str,
    ) -> None:
        meta = json.dumps(
            {
                "fingerprint": fingerprint,
                "lists": [
                    {"category": x.category, "source": x.source, "allow": x.allow} for x in lists
                ],
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        padding = _data_offset(len(meta)) - _HEADER.size - len(meta)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_HEADER.pack(MAGIC, VERSION, len(meta), 0, 0, 0))
                f.write(meta + b" " * padding)
                count = crc = 0
                for words in self._sorted_buckets(buckets):
                    crc = _write_le(f, words, crc)
                    count += len(words)
                crc = _write_le(f, self._directory, crc)
                bits = (len(self._directory) - 1).bit_length() - 1
                f.seek(0)
                f.write(_HEADER.pack(MAGIC, VERSION, len(meta), count, crc, bits))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def _write_le(f: IO[bytes], values: array[int], crc: int) -> int:
    """Write an array little-endian and return the running crc32 of what was written."""
    if not _LITTLE:
        values = array(values.typecode, values)
        values.byteswap()
    values.tofile(f)
    return zlib.crc32(values, crc)


def _data_offset(meta_len: int) -> int:
    """Where the entries start: after the header and the meta, rounded up to 8 bytes."""
    return (_HEADER.size + meta_len + 7) & ~7


def _check_file(
    f: BufferedReader, fingerprint: str | None
) -> tuple[int, int, int, tuple[ListInfo, ...], str] | None:
    """Validate an index file: (entry offset, entry count, directory length, lists, fingerprint).

    None when the header, the size, the meta, the fingerprint or the checksum is wrong.
    """
    size = os.fstat(f.fileno()).st_size
    header = f.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    magic, version, meta_len, count, crc, bits = _HEADER.unpack(header)
    if magic != MAGIC or version != VERSION or meta_len > _MAX_META or bits > _DIR_BITS:
        return None
    offset = _data_offset(meta_len)
    dir_len = (1 << bits) + 1
    if size != offset + 8 * count + 4 * dir_len:
        return None
    parsed = _parse_meta(f.read(meta_len))
    if parsed is None:
        return None
    found, lists = parsed
    if fingerprint is not None and found != fingerprint:
        return None
    f.seek(offset)
    buffer = memoryview(bytearray(_READ_CHUNK))
    seen = 0
    while read := f.readinto(buffer):
        seen = zlib.crc32(buffer[:read], seen)
    if seen != crc:
        return None
    return offset, count, dir_len, lists, found


def _parse_meta(raw: bytes) -> tuple[str, tuple[ListInfo, ...]] | None:
    """The fingerprint and list table of a file header, or None when malformed."""
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
    return fingerprint, tuple(lists)
