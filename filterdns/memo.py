"""The one kind of bounded memo: a dict that is cleared whole when full.

Every memo in the code base keeps the same promise. A lookup is a plain `dict.get` (no method of
ours runs on a hit, so the hot path pays nothing for the bound); a miss computes the value and
`remember`s it; when the memo holds `limit` entries, it is emptied before the new one goes in.

Clearing, rather than evicting one entry at a time, keeps hits free of bookkeeping (an LRU
moves an entry on every hit, an ordered dict costs more per lookup). A memo fills only when more
keys are in use than its bound, and then the popular keys come back within a few lookups. The
answer cache is not a memo: it is an LRU on purpose (`resolvers/cache.py`).

`CostMemo` bounds what a memo holds rather than how many entries: each entry counts the cost
it is remembered with, so a memo whose values are mostly shared (cheap) and sometimes built for
the key (several times dearer) holds many of the first and fewer of the second in the same
memory.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


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
