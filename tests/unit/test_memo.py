"""The bounded memos: dicts that empty themselves when full (by count, or by the cost of what
they hold), and never grow past their bound; the LRU the answer cache keeps its entries in."""

from __future__ import annotations

import weakref

import pytest

from filterdns.memo import CostMemo, Linked, Lru, Memo


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


class _Item(Linked):
    __slots__ = ("__weakref__",)  # for the test that entries are freed


def _lru(*keys: str) -> tuple[Lru[str, _Item], dict[str, _Item]]:
    sut: Lru[str, _Item] = Lru()
    items = {key: _Item(key) for key in keys}
    for item in items.values():
        sut.put(item)
    return sut, items


def _order(sut: Lru[str, _Item]) -> str:
    return "".join(item.key for item in sut.oldest_first())


@pytest.mark.parametrize(
    ("steps", "order"),
    [
        pytest.param("", "abc", id="put-order-oldest-first"),
        pytest.param("use a", "bca", id="a-used-entry-becomes-newest"),
        pytest.param("use c", "abc", id="using-the-newest-changes-nothing"),
        pytest.param("use b;use a", "cba", id="uses-in-turn"),
        pytest.param("drop b", "ac", id="a-dropped-entry-leaves-the-order"),
        pytest.param("drop a;drop b;drop c", "", id="dropped-to-empty"),
        pytest.param("put a", "bca", id="an-entry-put-again-under-its-key-is-newest-once"),
        pytest.param("pop;pop", "c", id="pop-oldest-takes-the-least-recently-used"),
        pytest.param("use a;pop", "ca", id="a-used-entry-outlives-an-older-unused-one"),
    ],
)
def test_an_lru_keeps_its_entries_in_order_of_use(steps: str, order: str) -> None:
    sut, items = _lru("a", "b", "c")
    for step in filter(None, steps.split(";")):
        verb, _, key = step.partition(" ")
        if verb == "use":
            sut.use(items[key])
        elif verb == "drop":
            sut.drop(items[key])
        elif verb == "put":
            items[key] = _Item(key)
            sut.put(items[key])
        else:
            sut.pop_oldest()
    assert _order(sut) == order
    assert list(sut) == sorted(order, key=list(sut).index) and set(sut) == set(order)
    assert all(sut[key] is items[key] for key in order)


def test_popping_an_empty_lru_says_so_and_clear_empties_it() -> None:
    sut, _items = _lru("a", "b")
    sut.clear()
    assert (len(sut), _order(sut)) == (0, "")
    with pytest.raises(KeyError):
        sut.pop_oldest()
    sut.put(_Item("z"))
    assert _order(sut) == "z"


def test_an_entry_out_of_the_lru_is_freed_with_its_last_reference() -> None:
    sut, items = _lru("a", "b", "c")
    gone = weakref.ref(items.pop("b"))
    sut.drop(sut["b"])
    evicted = weakref.ref(items.pop("a"))
    sut.pop_oldest()
    assert (gone(), evicted()) == (None, None)  # no cycle left to wait for the collector
    assert _order(sut) == "c"
