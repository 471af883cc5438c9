"""DelayWheel: many moments a fixed delay after they were set, on one loop timer."""

from __future__ import annotations

import asyncio

import pytest

from filterdns.wheel import GRAIN, DelayWheel


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
