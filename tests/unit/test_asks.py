"""Children's requests to unblock a name on a real database file: what the adults see, how
often a device may ask, and deciding each request once."""

from __future__ import annotations

from pathlib import Path

import pytest

from filterdns.web.asks import (
    AccessRequest,
    RequestError,
    RequestLimited,
    RequestStore,
    State,
)

NOW = 1_800_000_000.0
MINH = "aa:bb:cc:dd:ee:01"
LAN = "192.168.1.23"


@pytest.fixture
def store(tmp_path: Path) -> RequestStore:
    return RequestStore(tmp_path / "filterdns.db")


def test_a_request_waits_open_for_the_adults(store: RequestStore) -> None:
    made = store.add(MINH, "minh", "Scratch.MIT.edu.", "homework", now=NOW)
    assert made == AccessRequest(1, NOW, MINH, "minh", "scratch.mit.edu", "homework",
                                 State.OPEN, None, None, None)  # fmt: skip
    assert store.open() == [made] and store.get(1) == made and store.get(2) is None
    assert made.to_json()["state"] == "open" and made.to_json()["name"] == "scratch.mit.edu"


@pytest.mark.parametrize(
    ("typed", "name"),
    [
        ("https://www.youtube.com/watch?v=abc", "www.youtube.com"),
        ("khanacademy.org/math", "khanacademy.org"),
        ("bücher.de", "xn--bcher-kva.de"),
    ],
)
def test_a_pasted_address_asks_for_its_host(store: RequestStore, typed: str, name: str) -> None:
    assert store.add(MINH, "minh", typed, "").name == name


@pytest.mark.parametrize("typed", ["", "not a name", "http://", "a..b"])
def test_what_is_no_domain_name_is_refused(store: RequestStore, typed: str) -> None:
    with pytest.raises(RequestError, match="is not a domain name"):
        store.add(MINH, "minh", typed, "")


def test_the_reason_is_short_plain_text(store: RequestStore) -> None:
    made = store.add(MINH, "minh", "a.example", "need\x1b[31m it\nfor\tschool\u202e " + "x" * 300)
    assert made.reason.startswith("need[31m it for school ")
    assert len(made.reason) == 200 and "\x1b" not in made.reason and "\u202e" not in made.reason


def test_one_open_request_per_device_and_name(store: RequestStore) -> None:
    store.add(MINH, "minh", "games.example", "", now=NOW)
    with pytest.raises(RequestLimited, match=r"games\.example is already asked for") as caught:
        store.add(MINH, "minh", "GAMES.example", "please", now=NOW + 10)
    assert caught.value.retry_at is None
    store.add(LAN, "lan", "games.example", "", now=NOW + 10)  # another device may
    store.decide(1, approve=False, by="anna", now=NOW + 20)
    store.add(MINH, "minh", "games.example", "really", now=NOW + 30)  # answered: ask again


def test_five_requests_an_hour_per_device(store: RequestStore) -> None:
    for minute in range(5):
        store.add(MINH, "minh", f"site{minute}.example", "", now=NOW + minute * 60)
    with pytest.raises(RequestLimited, match="ask again in 50 min") as caught:
        store.add(MINH, "minh", "site5.example", "", now=NOW + 600)
    assert caught.value.retry_at == NOW + 3600  # the first one is an hour old then
    store.add(LAN, "lan", "site5.example", "", now=NOW + 600)  # another device may
    store.add(MINH, "minh", "site5.example", "", now=NOW + 3601)
    assert len(store.open()) == 7


def test_deciding_a_request_once(store: RequestStore) -> None:
    store.add(MINH, "minh", "scratch.mit.edu", "", now=NOW)
    store.add(LAN, "lan", "games.example", "", now=NOW + 1)
    approved = store.decide(1, approve=True, by="anna", grant_id=12, now=NOW + 60)
    assert (approved.state, approved.decided_by, approved.decided_at, approved.grant_id) == (
        State.APPROVED, "anna", NOW + 60, 12)  # fmt: skip
    declined = store.decide(2, approve=False, by="mr-hai", now=NOW + 70)
    assert declined.state is State.DECLINED and declined.grant_id is None
    assert store.open() == []
    with pytest.raises(RequestError, match="request #1 was already approved by anna"):
        store.decide(1, approve=False, by="binh")
    with pytest.raises(RequestError, match="no request #9"):
        store.decide(9, approve=True, by="anna")
    assert store.get(1) == approved


def test_adults_see_the_requests_of_their_profiles(store: RequestStore) -> None:
    a = store.add(MINH, "minh", "a.example", "", now=NOW)
    b = store.add(LAN, "7a", "b.example", "", now=NOW + 1)
    c = store.add(LAN, "7a", "c.example", "", now=NOW + 2)
    assert store.open(["7a"]) == [b, c] and store.open([]) == []
    store.decide(b.id, approve=False, by="mr-hai", now=NOW + 3)
    assert [r.id for r in store.recent()] == [c.id, b.id, a.id]  # newest first, any state
    assert [r.id for r in store.recent(profiles=["minh"])] == [a.id]
    assert [r.id for r in store.recent(client=LAN, limit=1)] == [c.id]


def test_nothing_asked_yet_is_no_request(tmp_path: Path) -> None:
    store = RequestStore(tmp_path / "none.db")
    assert store.open() == [] and store.recent() == [] and store.get(1) is None
