"""The bounded memo: a dict that empties itself when full, and never grows past its bound."""

from __future__ import annotations

from filterdns.memo import Memo


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
