"""One timer for many deadlines that all lie the same delay after they were set.

Every query to the upstreams has a deadline (`upstreams.timeout` after it started) and, with
several servers, a moment to ask the next one (the stagger). A timer handle per query costs an
allocation, a heap insertion and a cancellation, per query, to say "this much after now". Since
the delay is the same for every query of a resolver, the moments come in the order they are set:
a `DelayWheel` keeps them in a deque and holds one loop timer, armed for the earliest, that fires
every item due (late by at most `GRAIN`, so a burst of queries costs one wake-up, not one each).
An item that no longer needs its moment (answered) is skipped when its time comes, or dropped
before: its owner says so with `settled()`, and once at least half of the items (and `SWEEP_AT`
or more) may be such, the wheel drops the ones its `done` predicate names. Without that, every
answered query stayed for the whole delay: at 18,000 new names a second and a 2 s deadline,
36,000 finished exchanges (about 25 MB, each with its question) waited for moments nobody needed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

GRAIN = 0.01  # seconds: items due within this of each other fire in the same wake-up
SWEEP_AT = 256  # items held before settled ones are dropped ahead of their moments

T = TypeVar("T")


class DelayWheel(Generic[T]):
    """Calls `fire(item, due)` for each item `delay` seconds after it was added, in order."""

    def __init__(
        self,
        delay: float,
        fire: Callable[[T, float], None],
        done: Callable[[T], bool] | None = None,
    ) -> None:
        self.delay = delay
        self._fire = fire
        self._done = done  # an item that no longer needs its moment (see `settled`)
        self._settled = 0  # `settled` calls since the last sweep (some items may have fired)
        self._due: deque[tuple[float, T]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._due)

    def add(self, loop: asyncio.AbstractEventLoop, now: float, item: T) -> float:
        """Have `item` fired at `now + delay`; return that moment."""
        due = now + self.delay
        self._due.append((due, item))
        if self._timer is None:
            self._timer = loop.call_at(due, self._run, loop)
        return due

    def settled(self) -> None:
        """One more item no longer needs its moment; once they may be half of what is held
        (and at least `SWEEP_AT` items are), drop every item `done` names, in one pass.

        A pass looks at each of the n items held, and comes only after n / 2 `settled` calls
        or more since the last one: at most two looks per call, whatever the rate."""
        self._settled += 1
        due = self._due
        if self._settled * 2 < len(due) or len(due) < SWEEP_AT or self._done is None:
            return
        self._settled = 0
        done = self._done
        keep = [entry for entry in due if not done(entry[1])]
        due.clear()  # in place: `_run` may be firing from this very deque
        due.extend(keep)

    def close(self) -> None:
        """Forget every item and stop the timer."""
        self._due.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        queue = self._due
        try:
            while queue and queue[0][0] <= now:
                due, item = queue.popleft()
                self._fire(item, due)
        finally:
            if queue and self._timer is None:
                self._timer = loop.call_at(max(queue[0][0], now + GRAIN), self._run, loop)
