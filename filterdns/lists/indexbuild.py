"""Building the compact domain index (`lists.index`): streamed, sorted, persisted.

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
    offset 32  meta: UTF-8 JSON {"fingerprint": str, "lists": [{"category", "source", "allow"}],
               "regexes": [[list id, pattern, line]]} padded with spaces to a multiple of 8
    then       the entries, packed little-endian uint64, 8-byte aligned
    then       the directory, 2**k + 1 little-endian uint32

It is written to a temporary file in the same directory and moved over the old one with
`os.replace`, so a crash leaves either the old file or the new one, never half a file. The
fingerprint is the caller's summary of the sources (paths, sizes, modification times, ETags):
`DomainIndex.open` returns None when it differs, and the caller rebuilds. A big-endian host
loads the file into memory, byte-swapped, instead of mapping it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import tempfile
import weakref
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import IO, cast

from filterdns.lists.index import DomainIndex
from filterdns.lists.indexfile import (
    DIR_BITS,
    HEADER,
    LIST_MASK,
    MAGIC,
    MAX_LISTS,
    VERSION,
    ListInfo,
    RegexEntry,
    blake2b,
    data_offset,
    from_bytes,
    meta_json,
    write_le,
)

BUCKETS = 256  # build buckets, keyed by the top 8 bits of a word
BUCKET_SHIFT = 64 - 8
BATCH = 1 << 16  # names hashed between two checks of the spill threshold
SPILL_WORDS = 1 << 18  # with a spill directory, move the buckets to disk past 2 MiB


def give_back_freed_memory() -> None:
    """Hand the memory freed since the last call back to the system (glibc's `malloc_trim`;
    without glibc, nothing).

    A build makes and drops an object or two per name it parses, and the allocator keeps the
    space they took for later use. A server that builds in its own process (the shipped lists
    on a first start, a small configuration on every change) held it for the rest of its life:
    13 MB more than a restart on the shipped lists, 6 of them handed back here. A few
    milliseconds after a build that took a second.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return cast("Callable[[int], int]", ctypes.CDLL(None).malloc_trim)
    except (OSError, AttributeError):  # no C library to open, or not glibc (musl has none)
        return None


class IndexBuilder:
    """Collects (list, name) pairs and turns them into a `DomainIndex` (see the module docs).

    `spill_dir`, usually the directory of the index file, moves the words collected so far to
    an unnamed temporary file there every `SPILL_WORDS` words, so a build holds at most a few
    megabytes whatever the number of names. Without it the words stay in memory (8 bytes each).
    """

    def __init__(self, spill_dir: Path | None = None) -> None:
        self._lists: list[ListInfo] = []
        self._buckets: list[array[int]] | None = [array("Q") for _ in range(BUCKETS)]
        self._words = 0  # words added so far, repeats included
        self._buffered = 0  # words in the buckets since the last spill
        self._spill_dir = spill_dir
        self._spill: IO[bytes] | None = None
        self._spill_end = 0
        self._chunks: list[list[tuple[int, int]]] = [[] for _ in range(BUCKETS)]
        self._close_spill: Callable[[], object] = lambda: None
        self._directory = array("I")
        self._discarded: set[int] = set()
        self._regexes: list[RegexEntry] = []
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
        word = (from_bytes(blake2b(name.encode(), digest_size=6).digest(), "big") << 16) | list_id
        buckets[word >> BUCKET_SHIFT].append(word)
        self._words += 1
        self._buffered += 1
        if self._buffered >= SPILL_WORDS and self._spill_dir is not None:
            self._spill_buckets(buckets)

    def add_many(self, list_id: int, names: Iterable[str]) -> int:
        """Add normalised names to a list and return how many were read (repeats included).

        Every name needs at least two labels ("example.com", not "com").
        """
        buckets = self._open_buckets()
        if not 0 <= list_id < len(self._lists):
            raise ValueError(f"unknown list id {list_id}")
        digest, to_int = blake2b, from_bytes  # locals: looked up once per call, not per name
        shift = BUCKET_SHIFT
        source = iter(names)
        count = 0
        while True:
            batch = 0
            for name in islice(source, BATCH):
                if "." not in name:
                    raise ValueError(f"{name!r}: a listed name needs at least two labels")
                word = (to_int(digest(name.encode(), digest_size=6).digest(), "big") << 16) | (
                    list_id
                )
                buckets[word >> shift].append(word)
                batch += 1
            count += batch
            self._words += batch
            self._buffered += batch
            if self._spill_dir is not None and self._buffered >= SPILL_WORDS:
                self._spill_buckets(buckets)
            if batch < BATCH:
                return count

    def add_regex(self, list_id: int, pattern: str, line: int) -> None:
        """Add a regex rule to a list (checked by the parser with `regexes.compile_rule`)."""
        self._open_buckets()
        if not 0 <= list_id < len(self._lists):
            raise ValueError(f"unknown list id {list_id}")
        self._regexes.append(RegexEntry(list_id, pattern, line))

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
        regexes = [r for r in self._regexes if r.list_id not in self._discarded]
        try:
            if path is None:
                entries = self._merge_in_memory(buckets)
                return DomainIndex(entries, self._directory, lists, fingerprint, regexes)
            self._merge_to_file(buckets, path, meta_json(fingerprint, lists, regexes))
        finally:
            self._close_spill()
            self._chunks = []
            del buckets
            give_back_freed_memory()
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
        bits = max(0, min(DIR_BITS, self._words.bit_length() - 4))
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
                words = array("Q", [w for w in words if w & LIST_MASK not in discarded])
            unique = set(words)
            if len(unique) != len(words):
                for word, seen in Counter(words).items():
                    if seen > 1:
                        duplicates[word & LIST_MASK] += seen - 1
            del words
            ordered = sorted(unique)
            del unique
            # the slots whose first possible word falls in this bucket
            first, stop = -(-i << BUCKET_SHIFT >> shift), -(-(i + 1) << BUCKET_SHIFT >> shift)
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

    def _merge_to_file(self, buckets: list[array[int]], path: Path, meta: bytes) -> None:
        padding = data_offset(len(meta)) - HEADER.size - len(meta)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(HEADER.pack(MAGIC, VERSION, len(meta), 0, 0, 0))
                f.write(meta + b" " * padding)
                count = crc = 0
                for words in self._sorted_buckets(buckets):
                    crc = write_le(f, words, crc)
                    count += len(words)
                crc = write_le(f, self._directory, crc)
                bits = (len(self._directory) - 1).bit_length() - 1
                f.seek(0)
                f.write(HEADER.pack(MAGIC, VERSION, len(meta), count, crc, bits))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
