"""The one kind of bounded memo: a dict that is cleared whole when full.

Every memo in the code base keeps the same promise. A lookup is a plain `dict.get` (no method of
ours runs on a hit, so the hot path pays nothing for the bound); a miss computes the value and
`remember`s it; when the memo holds `limit` entries, it is emptied before the new one goes in.

Clearing, rather than evicting one entry at a time, keeps hits free of bookkeeping (an LRU
moves an entry on every hit, an ordered dict costs more per lookup). A memo fills only when more
keys are in use than its bound, and then the popular keys come back within a few lookups. The
answer cache is not a memo: it is an LRU on purpose (`resolvers/cache.py`).
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
