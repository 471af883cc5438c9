"""Remembered decisions: what a query is told from the memo is what deciding afresh says, and
the memo holds fewer decisions of their own (blocked, with a reason) than shared ones."""

from __future__ import annotations

import dataclasses
import tracemalloc

import pytest

from filterdns.policy import state
from filterdns.policy.decisions import Policy
from tests.unit.test_policy import at, config, index

WHEN = "2026-11-23 17:00"  # a Monday after school: no schedule window is open


def _fields(decision: object) -> dict[str, object]:
    values = dataclasses.asdict(decision)  # type: ignore[call-overload]
    values.pop("trace")
    return values


@pytest.mark.parametrize(
    ("profile", "name"),
    [
        pytest.param("minh", "casino.example", id="listed-name-itself"),
        pytest.param("minh", "www.casino.example", id="subdomain-of-a-listed-name"),
        pytest.param("minh", "roblox.com", id="profile-block-list"),
        pytest.param("minh", "vpn.example", id="bypass"),
        pytest.param("minh", "www.google.com", id="safesearch-rewrite"),
        pytest.param("minh", "khanacademy.org", id="profile-allow-list"),
        pytest.param("teen", "example.com", id="allowed"),
    ],
)
def test_a_remembered_decision_reads_like_one_decided_afresh(profile: str, name: str) -> None:
    built = index()
    sut = Policy(config(), lambda: built)
    now = at(WHEN)
    first, _cap = sut.verdict(profile, name, now)
    again, _cap = sut.verdict(profile, name, now)
    fresh = sut.decide(profile, name, now, explain=True)
    assert again is first  # from the memo
    assert _fields(again) == _fields(fresh) | {"ttl_cap": again.ttl_cap}


def test_blocked_decisions_fill_the_memo_twice_as_fast_as_allowed_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(state, "MAX_REMEMBERED", 8)
    built = index()
    sut = Policy(config(), lambda: built)
    now = at(WHEN)
    allowed = [f"site{i}.example.com" for i in range(8)]
    blocked = [f"host{i}.casino.example" for i in range(4)]
    for name in allowed:
        sut.verdict("minh", name, now)
    memo = sut.profiles["minh"].state.decisions  # type: ignore[union-attr]
    assert set(memo) == set(allowed)
    for name in blocked:
        sut.verdict("minh", name, now)
    assert set(memo) == set(blocked)  # four blocked decisions fill what eight allowed did
    sut.verdict("minh", "one-more.example.com", now)
    assert set(memo) == {"one-more.example.com"}
    assert [sut.verdict("minh", n, now)[0].action.value for n in blocked] == ["block"] * 4


def test_deciding_keeps_nothing_but_the_remembered_decisions() -> None:
    """The steps write their trace into one that keeps nothing (only `explain` keeps one): so
    what deciding 2,000 new names leaves is the memo's decisions and their keys. Compiled, an
    append to a list subclass that overrode it once kept every line (bench/PROFILE.md)."""
    built = index()
    sut = Policy(config(), lambda: built)
    now = at(WHEN)
    names = [f"host{i}.casino.example" for i in range(2000)]
    sut.verdict("minh", "warm.casino.example", now)
    tracemalloc.start()
    for name in names:
        sut.verdict("minh", name, now)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert sut.profiles["minh"].state.decisions.used == 2 * (len(names) + 1)  # type: ignore[union-attr]
    assert held / len(names) < 600  # about 420: a Decision, its reason, the memo's slot
