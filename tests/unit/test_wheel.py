"""DelayWheel: many moments a fixed delay after they were set, on one loop timer."""

from __future__ import annotations

import asyncio

import pytest

from filterdns.wheel import GRAIN, SWEEP_AT, DelayWheel


async def test_items_fire_in_order_at_their_moment_and_not_before() -> None:
    loop = asyncio.get_running_loop()
    fired: list[tuple[str, float, float]] = []
    last = loop.create_future()

    def fire(item: str, due: float) -> None:
        fired.append((item, due, loop.time()))
        if item == "c":
            last.set_result(None)

    wheel: DelayWheel[str] = DelayWheel(0.05, fire)
    start = loop.time()
    dues = [wheel.add(loop, loop.time(), item) for item in "abc"]
    await last
    assert [item for item, _due, _at in fired] == ["a", "b", "c"]
    assert [due for _item, due, _at in fired] == dues
    assert dues[0] == pytest.approx(start + 0.05, abs=0.005)
    for _item, due, at in fired:
        assert due <= at < due + GRAIN + 0.05  # never early; late by about a grain at most
    assert len(wheel) == 0


async def test_one_timer_serves_every_item_and_stops_when_empty() -> None:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    fired: list[int] = []

    def fire(item: int, _due: float) -> None:
        fired.append(item)
        if len(fired) == 1000:
            done.set_result(None)

    wheel: DelayWheel[int] = DelayWheel(0.02, fire)
    for item in range(1000):
        wheel.add(loop, loop.time(), item)
    assert wheel._timer is not None
    await done
    assert fired == list(range(1000))
    assert wheel._timer is None  # nothing left: no timer


async def test_close_forgets_everything() -> None:
    loop = asyncio.get_running_loop()
    fired: list[int] = []
    wheel: DelayWheel[int] = DelayWheel(0.01, lambda item, _due: fired.append(item))
    wheel.add(loop, loop.time(), 1)
    wheel.close()
    later = loop.create_future()
    loop.call_later(0.05, later.set_result, None)
    await later
    assert fired == []
    assert len(wheel) == 0


async def test_settled_items_leave_long_before_their_moment() -> None:
    loop = asyncio.get_running_loop()
    fired: list[int] = []
    finished: set[int] = set()
    wheel: DelayWheel[int] = DelayWheel(
        60.0, lambda item, _due: fired.append(item), finished.__contains__
    )
    for item in range(10_000):
        wheel.add(loop, loop.time(), item)
        if item % 100:  # all but every hundredth is answered at once
            finished.add(item)
            wheel.settled()
    # Held: the 100 still waiting and fewer settled ones than a sweep's threshold, not 10,000.
    assert len(wheel) < 100 + SWEEP_AT
    assert {item for _due, item in wheel._due} >= set(range(0, 10_000, 100))
    assert fired == []
    wheel.close()


async def test_a_sweep_during_firing_fires_each_waiting_item_once_in_order() -> None:
    loop = asyncio.get_running_loop()
    fired: list[int] = []
    finished: set[int] = set()
    done = loop.create_future()

    def fire(item: int, _due: float) -> None:
        fired.append(item)
        # Each expiry settles the item and the next one (answered meanwhile); the last is
        # never settled before its moment, so it always fires.
        for settle in (item, item + 1):
            if settle not in finished and settle < 999:
                finished.add(settle)
                wheel.settled()
        if item == 999:
            done.set_result(None)

    wheel: DelayWheel[int] = DelayWheel(0.02, fire, finished.__contains__)
    for item in range(1000):
        wheel.add(loop, loop.time(), item)
    await done
    assert fired == sorted(set(fired))  # in order, never twice
    assert fired[0] == 0 and fired[-1] == 999
    assert len(fired) < 1000  # some settled items were dropped before their moment
    assert len(wheel) == 0
