"""The name model in the policy: asked only when no list decides, blocked by the child bands."""

from __future__ import annotations

import pytest

from filterdns.lists import namemodel
from filterdns.policy.decisions import Policy
from tests.unit.test_namemodel import TINY
from tests.unit.test_policy import CONFIG, at, config, index

NOON = at("2026-11-23 12:00")  # a Monday: no bedtime, no homework


class Counting(namemodel.NameModel):
    """The tiny model, counting the sites it scores."""

    scored: list[str]

    def probabilities(self, name: str) -> tuple[float, ...] | None:
        self.scored.append(name)
        return namemodel.NameModel.probabilities(self, name)


def model() -> Counting:
    tiny = namemodel.from_dict(TINY)
    counting = Counting(tiny.categories, tiny.bias, tiny.thresholds, tiny.table)
    counting.scored = []
    return counting


def policy(scorer: namemodel.NameModel | None = None, extra: str = "") -> Policy:
    built = index()
    return Policy(config(CONFIG + extra), lambda: built, model=scorer or model())


@pytest.mark.parametrize(
    ("profile", "name", "action", "category"),
    [
        pytest.param("minh", "bet88.win", "block", "gambling-suspect", id="9-12-gambling"),
        pytest.param("minh", "www.sex-tube.com", "block", "adult-suspect", id="9-12-adult"),
        pytest.param("teen", "bet88.win", "block", "gambling-suspect", id="16-17"),
        pytest.param("grownup", "bet88.win", "allow", None, id="adult-band-allows"),
        pytest.param("minh", "example.com", "allow", None, id="unflagged"),
    ],
)
def test_unlisted_names_the_model_flags_are_blocked_for_children(
    profile: str, name: str, action: str, category: str | None
) -> None:
    decision = policy().decide(profile, name, NOON)
    assert (decision.action, decision.category) == (action, category)


def test_a_listed_name_is_never_scored() -> None:
    scorer = model()
    sut = policy(scorer)
    decisions = [sut.decide("minh", n, NOON) for n in ("casino.example", "edu.games.example")]
    assert [d.category for d in decisions] == ["gambling", None]
    assert scorer.scored == []


def test_the_block_names_the_site_and_the_score() -> None:
    decision = policy().decide("minh", "cdn.bet88.win", NOON, explain=True)
    assert decision.listed == "bet88.win"
    assert decision.source is not None and decision.source.startswith("name model (score 0.")
    assert any("gambling-suspect" in line and "score" in line for line in decision.trace)
    # What a parent reads (log, report, explain): the model's verdict, not "listed in".
    assert "bet88.win looks like a gambling site to the name model (score 0." in decision.reason


def test_blocking_name_model_false_turns_it_off() -> None:
    sut = policy(extra="blocking: {name_model: false}\n")
    assert sut.decide("minh", "bet88.win", NOON).action == "allow"


def test_a_remembered_decision_costs_no_scoring() -> None:
    scorer = model()
    sut = policy(scorer)
    for _ in range(3):
        sut.decide("minh", "bet88.win", NOON)
    assert scorer.scored == ["bet88.win"]
