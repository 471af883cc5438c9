"""SafeSearch and YouTube coverage: every host that serves results goes to its safe host."""

from __future__ import annotations

import textwrap

import pytest

from filterdns.config import default_config, load_config_text
from filterdns.lists.index import DomainIndex
from filterdns.policy.decisions import Policy

NOON = 1767762000.0  # Wednesday 2026-01-07 12:00 in Asia/Ho_Chi_Minh: no bedtime
CONFIG = """\
server: {timezone: Asia/Ho_Chi_Minh}
profiles:
  child: {age_band: 9-12}
  teen: {age_band: 13-15}
  parent: {age_band: adult}
default_profile: parent
"""
GOOGLE, BING, DDG = "forcesafesearch.google.com", "strict.bing.com", "safe.duckduckgo.com"
STRICT, MODERATE = "restrict.youtube.com", "restrictmoderate.youtube.com"


def policy() -> Policy:
    config = load_config_text(
        textwrap.dedent(CONFIG), source="<test>", defaults=default_config(is_root=False)
    )
    empty = DomainIndex.empty()
    return Policy(config, lambda: empty)


SEARCH = [
    ("google.com", GOOGLE),
    ("www.google.com", GOOGLE),
    ("google.com.vn", GOOGLE),
    ("www.google.com.vn", GOOGLE),
    ("google.co.uk", GOOGLE),
    ("www.google.co.jp", GOOGLE),
    ("google.de", GOOGLE),
    ("www.google.fr", GOOGLE),
    ("images.google.com", GOOGLE),
    ("images.google.com.vn", GOOGLE),
    ("images.google.co.uk", GOOGLE),
    ("encrypted.google.com", GOOGLE),
    ("bing.com", BING),
    ("www.bing.com", BING),
    ("duckduckgo.com", DDG),
    ("www.duckduckgo.com", DDG),
    ("start.duckduckgo.com", DDG),
    ("html.duckduckgo.com", DDG),
    ("lite.duckduckgo.com", DDG),
]
YOUTUBE = [
    "youtube.com",
    "www.youtube.com",
    "m.youtube.com",
    "youtubei.googleapis.com",
    "youtube.googleapis.com",
    "www.youtube-nocookie.com",
]
LOOK_ALIKES = [
    "google.evil.com",
    "www.google.com.evil.net",
    "notgoogle.com",
    "mail.google.com",
    "maps.google.com",
    "google.example",
    "notbing.com",
    "bing.com.evil.net",
    "cn.bing.com",
    "duckduckgo.com.evil.net",
    "evilduckduckgo.com",
    "music.youtube.com",
    "youtube.com.evil.net",
    "notyoutube.com",
    "googleapis.com",
    "storage.googleapis.com",
]


@pytest.mark.parametrize(("name", "target"), SEARCH, ids=[name for name, _ in SEARCH])
def test_search_hosts_go_to_the_safe_host(name: str, target: str) -> None:
    decisions = policy()
    for profile in ("child", "teen"):
        decision = decisions.decide(profile, name, NOON)
        assert (decision.action, decision.target) == ("rewrite", target), profile
    assert decisions.decide("parent", name, NOON).action == "allow"


@pytest.mark.parametrize("name", YOUTUBE)
def test_youtube_hosts_go_to_the_band_restriction(name: str) -> None:
    decisions = policy()
    assert decisions.decide("child", name, NOON).target == STRICT
    assert decisions.decide("teen", name, NOON).target == MODERATE
    assert decisions.decide("parent", name, NOON).action == "allow"


@pytest.mark.parametrize("name", LOOK_ALIKES)
def test_look_alikes_are_not_rewritten(name: str) -> None:
    decisions = policy()
    for profile in ("child", "teen", "parent"):
        assert decisions.decide(profile, name, NOON).action == "allow", profile
