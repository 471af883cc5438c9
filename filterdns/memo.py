"""The one kind of bounded memo: a dict that is cleared whole when full.

Every memo in the code base keeps the same promise. A lookup is a plain `dict.get` (no method of
ours runs on a hit, so the hot path pays nothing for the bound); a miss computes the value and
`remember`s it; when the memo holds `limit` entries, it is emptied before the new one goes in.

Clearing, rather than evicting one entry at a time, keeps hits free of bookkeeping (an LRU
moves an entry on every hit, an ordered dict costs more per lookup). A memo fills only when more
keys are in use than its bound, and then the popular keys come back within a few lookups. The
answer cache is not a memo: it is an LRU on purpose (`resolvers/cache.py`).

`Lru` is the other kind, for the answer cache: least recently used first out, its order kept
in links the entries carry themselves (`Linked`), not in an OrderedDict's nodes and table
beside a dict (about 40 bytes an entry less under the cache's churn).

`CostMemo` bounds what a memo holds rather than how many entries: each entry counts the cost
it is remembered with, so a memo whose values are mostly shared (cheap) and sometimes built for
the key (several times dearer) holds many of the first and fewer of the second in the same
memory.
"""

from __future__ import annotations

from typing import Any, TypeVar

from mypy_extensions import mypyc_attr

K = TypeVar("K")
V = TypeVar("V")
E = TypeVar("E", bound="Linked")


@mypyc_attr(native_class=False)  # a dict: an ordinary class when compiled
class Memo(dict[K, V]):
    """A dict of at most `limit` entries, cleared whole when full (see the module docstring)."""

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def remember(self, key: K, value: V) -> V:
        """Keep `value` under `key`, emptying the memo first when it is full; returns `value`."""
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value


@mypyc_attr(native_class=False)  # a dict: an ordinary class when compiled
class CostMemo(Memo[K, V]):
    """A memo whose entries count `cost` units each, emptied when `limit` units would be
    exceeded (see the module docstring); a plain `get` is still the whole lookup."""

    __slots__ = ("used",)

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.used = 0

    def remember(self, key: K, value: V, cost: int = 1) -> V:
        """Keep `value` under `key` at `cost` units, emptying the memo first when it would
        hold more than its limit; returns `value`."""
        if self.used + cost > self.limit:
            self.clear()
        self[key] = value
        self.used += cost
        return value

    def clear(self) -> None:
        """Forget every entry and the units they held."""
        super().clear()
        self.used = 0


class Linked:
    """An entry of an `Lru`: its key and its neighbours in the order of use, held by itself."""

    __slots__ = ("key", "newer", "older")
    __deletable__ = ("newer", "older")  # when compiled (_unlink)

    older: Linked
    newer: Linked

    def __init__(self, key: Any = None) -> None:
        self.key = key  # its neighbours are set when an LRU takes it in


@mypyc_attr(native_class=False)  # a dict: an ordinary class when compiled
class Lru(dict[K, E]):
    """A dict of `Linked` entries in order of use: `put` and `use` make an entry the newest,
    `pop_oldest` takes the least recently used out. Lookups are plain `dict.get`s; changes go
    through these methods only (the dict's own would leave the ring behind); bounding it is
    the owner's (it evicts what it must before it puts)."""

    __slots__ = ("_root",)

    def __init__(self) -> None:
        super().__init__()
        root = self._root = Linked()  # newer: the oldest entry, older: the newest (a ring)
        root.older = root.newer = root

    def put(self, entry: E) -> None:
        """Keep `entry` under its key as the newest, in place of any entry held there."""
        old = self.get(entry.key)
        if old is not None:
            _unlink(old)
        self[entry.key] = entry
        root = self._root
        newest = entry.older = root.older
        entry.newer = root
        newest.newer = root.older = entry

    def use(self, entry: E) -> None:
        """Make `entry`, held by the LRU, the newest."""
        root = self._root
        newest = root.older
        if newest is entry:
            return
        older, newer = entry.older, entry.newer
        older.newer, newer.older = newer, older
        entry.older, entry.newer = newest, root
        newest.newer = root.older = entry

    def drop(self, entry: E) -> None:
        """Forget `entry`, held by the LRU."""
        del self[entry.key]
        _unlink(entry)

    def pop_oldest(self) -> E:
        """Take out and return the least recently used entry (KeyError when empty)."""
        oldest = self._root.newer
        if oldest is self._root:
            raise KeyError("pop_oldest(): the LRU is empty")
        del self[oldest.key]
        _unlink(oldest)
        return oldest  # type: ignore[return-value]  # every linked entry but the root is an E

    def clear(self) -> None:
        """Forget every entry."""
        super().clear()
        self._root.older = self._root.newer = self._root

    def oldest_first(self) -> list[E]:
        """The entries from the least to the most recently used."""
        out: list[E] = []
        entry = self._root.newer
        while entry is not self._root:
            out.append(entry)  # type: ignore[arg-type]  # as in pop_oldest
            entry = entry.newer
        return out


def _unlink(entry: Linked) -> None:
    older, newer = entry.older, entry.newer
    older.newer, newer.older = newer, older
    del entry.older, entry.newer  # no reference left to the ring: freed with its last holder
