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

Regex rules
-----------
An adblock list may also hold regex rules (`/^ads?[0-9]*[.]/`). They cannot be hashed, so they sit
beside the words: `regexes`, each with its list id, pattern and line, kept in the file's meta
and compiled once when the index is made or opened (a pattern that no longer compiles is left
out). `match_regex` searches the name with each in turn; `filterdns.regexes` bounds their number
per list and their shape, and the policy asks only for names whose decision it does not remember.

Threads: `IndexBuilder.finish` is CPU-bound and meant to run in a worker thread. The caller
swaps the new index in with one assignment, then closes the old one; `match` never awaits, so
on the event loop no lookup can be running on the old index when it is closed.
"""

from __future__ import annotations

import mmap
import re
from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from filterdns.lists.indexfile import (
    LIST_MASK,
    LITTLE,
    ListInfo,
    RegexEntry,
    blake2b,
    check_file,
    from_bytes,
)
from filterdns.regexes import compile_rule


@dataclass(slots=True, init=False)  # per listed name asked: not frozen; __init__ below
class Match:
    """One hit: the listed name (a suffix of the query, or the query itself) and its list."""

    name: str
    list_id: int

    def __init__(self, name: str, list_id: int) -> None:
        self.name = name
        self.list_id = list_id


class DomainIndex:
    """A sorted array of (name hash, list id) words, in memory or memory-mapped from a file."""

    __slots__ = (
        "_directory",
        "_entries",
        "_mmap",
        "_searches",
        "_shift",
        "_size",
        "_views",
        "fingerprint",
        "lists",
        "regexes",
    )

    def __init__(
        self,
        entries: Sequence[int],
        directory: Sequence[int],
        lists: tuple[ListInfo, ...],
        fingerprint: str = "",
        regexes: Sequence[RegexEntry] = (),
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
        searches: list[tuple[Callable[[str], re.Match[str] | None], RegexEntry]] = []
        for rule in regexes:
            try:
                searches.append((compile_rule(rule.pattern).search, rule))
            except ValueError:  # checked when parsed; a file from elsewhere may differ
                continue
        self._searches = tuple(searches)
        self.regexes = tuple(rule for _search, rule in searches)

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
                layout = check_file(f, fingerprint)
                if layout is None:
                    return None
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None
        offset, count, dir_len, lists, found, regexes = layout
        base = memoryview(mapped)
        entries = base[offset : offset + 8 * count]
        directory = base[offset + 8 * count : offset + 8 * count + 4 * dir_len]
        if LITTLE:
            views = (entries.cast("Q"), directory.cast("I"), entries, directory, base)
            return cls(views[0], views[1], lists, found, regexes, mapped=mapped, views=views)
        # A big-endian host reads the little-endian file into memory instead of mapping it.
        words, slots = array("Q", entries.tobytes()), array("I", directory.tobytes())
        words.byteswap()
        slots.byteswap()
        for view in (entries, directory, base):
            view.release()
        mapped.close()
        return cls(words, slots, lists, found, regexes)

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
            key = from_bytes(blake2b(raw[pos:], digest_size=6).digest(), "big") << 16
            slot = key >> shift
            hi = directory[slot + 1]
            i = bisect_left(entries, key, directory[slot], hi)
            end = key | LIST_MASK
            if i < hi and entries[i] <= end:
                suffix = raw[pos:].decode() if pos else name
                while i < hi and (word := entries[i]) <= end:
                    out.append(Match(suffix, word & LIST_MASK))
                    i += 1
            pos = dot + 1
            dot = raw.find(46, pos)
        return out

    def match_regex(self, name: str) -> list[RegexEntry]:
        """The regex rules (of every list) found in a normalised name, in list order."""
        return [rule for search, rule in self._searches if search(name) is not None]

    def lists_for(self, name: str) -> set[int]:
        """The ids of every list holding the name or one of its parents."""
        return {m.list_id for m in self.match(name)}

    def close(self) -> None:
        """Release the mapping; later lookups miss. Swap the new index in before closing."""
        self._entries = array("Q")
        self._directory = array("I", [0, 0])
        self._shift = 64
        self._size = 0
        self._searches = ()
        for view in self._views:
            view.release()
        self._views = ()
        if self._mmap is not None:
            self._mmap.close()
            self._mmap = None

    def __repr__(self) -> str:
        where = "mapped" if self._mmap is not None else "in memory"
        return f"<DomainIndex {self._size} entries, {len(self.lists)} lists, {where}>"
