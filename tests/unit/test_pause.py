"""Pauses and overrides in the policy, with a fixed clock: what a paused child or a class in an
exam gets, who the decision names, and when it ends."""

from __future__ import annotations

import pytest

from filterdns.policy.values import UNTIL_RESUMED, Grant, GrantKind
from tests.unit.test_policy import at, sut

NOW = at("2026-11-23 10:00")  # a Monday: school hours, no bedtime
PAUSE = Grant(4, "minh", NOW + 30 * 60, kind=GrantKind.PAUSE, created_by="anna")
FOREVER = Grant(5, "minh", UNTIL_RESUMED, kind=GrantKind.PAUSE, created_by="anna")
EXAM = Grant(6, "teen", NOW + 45 * 60, reason="exam", kind=GrantKind.BLOCK_ALL,
             created_by="mr-hai")  # fmt: skip


@pytest.mark.parametrize(
    ("grants", "profile", "name", "when", "action", "step", "category"),
    [
        pytest.param((PAUSE,), "minh", "example.com", NOW, "block", 5, None,
                     id="pause-blocks-everything"),
        pytest.param((PAUSE,), "minh", "casino.example", NOW, "block", 5, "gambling",
                     id="pause-keeps-the-category"),
        pytest.param((PAUSE,), "minh", "www.khanacademy.org", NOW, "allow", 3, None,
                     id="profile-allow-list-beats-pause"),
        pytest.param((PAUSE, Grant(7, "minh", NOW + 600, domain="school.edu.vn")), "minh",
                     "school.edu.vn", NOW, "allow", 3, None, id="domain-grant-beats-pause"),
        pytest.param((PAUSE, Grant(7, "minh", NOW + 600, category="games",
                                   kind=GrantKind.ALLOW_CATEGORY)),
                     "minh", "games.example", NOW, "block", 5, "games",
                     id="category-grant-does-not-beat-pause"),
        pytest.param((PAUSE,), "minh", "use-application-dns.net", NOW, "nxdomain", 4, "bypass",
                     id="bypass-protection-still-first"),
        pytest.param((PAUSE,), "minh", "example.com", NOW + 30 * 60, "allow", 8, None,
                     id="pause-expired"),
        pytest.param((PAUSE,), "teen", "example.com", NOW, "allow", 8, None,
                     id="pause-is-for-its-profile-only"),
        pytest.param((FOREVER,), "minh", "example.com", NOW + 86400 * 365, "block", 5, None,
                     id="pause-without-duration-lasts"),
        pytest.param((EXAM,), "teen", "example.com", NOW + 44 * 60, "block", 5, None,
                     id="block-all-exam"),
        pytest.param((EXAM,), "teen", "example.com", NOW + 45 * 60, "allow", 8, None,
                     id="block-all-exam-over"),
        pytest.param((), "minh", "example.com", NOW, "allow", 8, None, id="resumed"),
    ],
)  # fmt: skip
def test_pauses_and_overrides_in_the_decision_order(
    grants: tuple[Grant, ...],
    profile: str,
    name: str,
    when: float,
    action: str,
    step: int,
    category: str | None,
) -> None:
    decision = sut(grants).decide(profile, name, when)
    assert (decision.action, decision.step, decision.category) == (action, step, category)


def test_a_pause_names_who_and_until_when_and_its_answers_end_with_it() -> None:
    decision = sut((PAUSE,)).decide("minh", "example.com", NOW)
    assert decision.rule == "paused by anna until 10:30, #4"  # in minh's time zone
    assert decision.reason.startswith("paused by anna until 10:30, #4: everything is blocked")
    assert decision.ttl_cap == 30 * 60


def test_an_exam_override_names_its_reason() -> None:
    decision = sut((EXAM,)).decide("teen", "example.com", NOW)
    assert decision.rule == "everything blocked by mr-hai until 10:45 (exam), #6"


def test_a_pause_until_resumed_says_so_and_its_answers_live_as_usual() -> None:
    decision = sut((FOREVER,)).decide("minh", "example.com", NOW)
    assert decision.rule == "paused by anna until resumed, #5"
    # the pause sets no end: the next change is the end of minh's school schedule
    assert decision.ttl_cap == int(at("2026-11-23 16:30") - NOW)


def test_explain_shows_the_pause_at_step_5() -> None:
    decision = sut((PAUSE,)).decide("minh", "example.com", NOW, explain=True)
    assert "5. blocked: paused by anna until 10:30, #4" in decision.trace


def test_an_allow_override_for_two_profiles_allows_for_both_until_it_ends() -> None:
    made = (
        Grant(8, "minh", NOW + 45 * 60, domain="casino.example", created_by="mr-hai"),
        Grant(9, "teen", NOW + 45 * 60, domain="casino.example", created_by="mr-hai"),
    )
    policy = sut(made)
    for profile in ("minh", "teen"):
        during = policy.decide(profile, "casino.example", NOW)
        assert (during.action, during.step, during.ttl_cap) == ("allow", 3, 45 * 60)
        assert policy.decide(profile, "casino.example", NOW + 45 * 60).action == "block"
