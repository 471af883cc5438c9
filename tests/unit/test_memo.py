"""The bounded memos: dicts that empty themselves when full (by count, or by the cost of what
they hold), and never grow past their bound."""

from __future__ import annotations

import pytest

from filterdns.memo import CostMemo, Memo


def test_a_memo_answers_like_a_dict_until_full() -> None:
    sut: Memo[str, int] = Memo(3)
    assert sut.remember("a", 1) == 1
    sut.remember("b", 2)
    sut.remember("c", 3)
    assert (sut.get("a"), sut.get("b"), sut.get("c"), sut.get("d")) == (1, 2, 3, None)


def test_a_full_memo_is_emptied_before_the_next_entry() -> None:
    sut: Memo[str, int] = Memo(3)
    for key, value in zip("abc", range(3), strict=True):
        sut.remember(key, value)
    sut.remember("d", 4)
    assert dict(sut) == {"d": 4}


def test_a_memo_never_holds_more_than_its_bound() -> None:
    sut: Memo[int, int] = Memo(100)
    for key in range(10_000):
        sut.remember(key, key)
        assert len(sut) <= 100


@pytest.mark.parametrize(
    ("costs", "left"),
    [
        pytest.param([1, 1, 1, 1], {"a": 0, "b": 1, "c": 2, "d": 3}, id="cheap-entries-fill-it"),
        pytest.param([2, 1, 1], {"a": 0, "b": 1, "c": 2}, id="mixed-costs-up-to-the-limit"),
        pytest.param([2, 2, 1], {"c": 2}, id="dear-entries-fill-it-sooner"),
        pytest.param([3, 2], {"b": 1}, id="emptied-before-going-over"),
        pytest.param([1, 4], {"b": 1}, id="one-entry-of-the-whole-limit"),
    ],
)
def test_a_cost_memo_holds_entries_up_to_their_summed_cost(
    costs: list[int], left: dict[str, int]
) -> None:
    sut: CostMemo[str, int] = CostMemo(4)
    for position, cost in enumerate(costs):
        assert sut.remember("abcd"[position], position, cost) == position
    assert dict(sut) == left
    assert sut.used == sum(costs[position] for position in left.values())


def test_a_cleared_cost_memo_has_its_whole_limit_again() -> None:
    sut: CostMemo[str, int] = CostMemo(4)
    sut.remember("a", 1, 3)
    sut.clear()
    sut.remember("b", 2, 4)
    assert dict(sut) == {"b": 2}
