"""The shipped lists through the project's own index and Policy: the never-block set and the
reviewed exceptions hold for every band, and the VPN and proxy apps are blocked for a child."""

from __future__ import annotations

import functools
import re
import textwrap
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from filterdns.config import BANDS, NEVER_BLOCK_CATEGORY, default_config, load_config_text
from filterdns.lists.cachedir import shipped_index
from filterdns.lists.index import DomainIndex
from filterdns.lists.indexbuild import IndexBuilder
from filterdns.lists.indexfile import ListInfo
from filterdns.lists.shipped import CATEGORIES, SHIPPED_DIR
from filterdns.policy.decisions import Policy
from filterdns.policy.values import Action

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")).timestamp()
PROFILES = {band: f"p{i}" for i, band in enumerate(BANDS)}
CONFIG = "server: {timezone: Asia/Ho_Chi_Minh}\nprofiles:\n" + "".join(
    f"  {name}: {{age_band: {band}}}\n" for band, name in PROFILES.items()
)
ENTRY = re.compile(r"([^#\s]+)(?:\s+([^#\s]+))?\s*#\s*(\S.*)")


def _config(text: str = CONFIG):  # type: ignore[no-untyped-def]
    defaults = default_config(is_root=False)
    return load_config_text(textwrap.dedent(text), source="<test>", defaults=defaults)


@functools.cache
def _shipped(tmp: str) -> DomainIndex:
    return shipped_index(Path(tmp))


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    built = _shipped(str(tmp_path_factory.mktemp("cache")))
    return Policy(_config(), lambda: built)


def _hand_file(name: str) -> list[tuple[str, ...]]:
    """The content lines of a hand-reviewed file, as (fields..., reason)."""
    rows = []
    for line in (SHIPPED_DIR / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            found = ENTRY.fullmatch(line.strip())
            assert found is not None, line
            rows.append(tuple(g for g in found.groups() if g is not None))
    return rows


NEVER_BLOCK = [row[0] for row in _hand_file("never-block.txt")]
EXCEPTIONS = [row for row in _hand_file("exceptions.txt")]


def test_exceptions_parse_and_each_has_a_category_and_a_reason() -> None:
    assert EXCEPTIONS
    for category, name, reason in EXCEPTIONS:
        assert category in CATEGORIES, (category, name)
        assert "." in name and name == name.lower(), name
        assert len(reason) > 5, (category, name)
    pairs = [(c, n) for c, n, _ in EXCEPTIONS]
    assert len(pairs) == len(set(pairs))


def test_never_block_names_each_have_a_group() -> None:
    groups = {"education", "government", "health", "news", "infrastructure", "cdn"}
    groups.add("parental-control")
    for line in (SHIPPED_DIR / "never-block.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            _name, _, group = line.partition("#")
            assert group.split()[0] in groups, line
    assert len(NEVER_BLOCK) == len(set(NEVER_BLOCK))


@pytest.mark.parametrize("band", BANDS)
def test_no_shipped_list_blocks_a_never_block_name_for_any_band(policy: Policy, band: str) -> None:
    for name in NEVER_BLOCK:
        for query in (name, f"www.{name}"):
            decision = policy.decide(PROFILES[band], query, NOON)
            assert decision.action not in (Action.BLOCK, Action.NXDOMAIN), (band, query, decision)


@pytest.mark.parametrize("band", BANDS)
def test_reviewed_exceptions_hold_for_their_category(policy: Policy, band: str) -> None:
    for category, name, _ in EXCEPTIONS:
        decision = policy.decide(PROFILES[band], name, NOON)
        assert decision.category != category or decision.action is not Action.BLOCK, (
            band,
            name,
            decision,
        )


@pytest.mark.parametrize(
    "name",
    [
        "engage.cloudflareclient.com",
        "api.cloudflareclient.com",
        "www.torproject.org",
        "psiphon.ca",
        "psiphon3.com",
        "ultrasurf.us",
        "browsec.com",
        "protonvpn.com",
        "account.protonvpn.com",
        "vpn-api.proton.me",
    ],
)
def test_vpn_and_proxy_apps_are_blocked_for_the_youngest(policy: Policy, name: str) -> None:
    decision = policy.decide(PROFILES["under-9"], name, NOON)
    assert decision.action is Action.BLOCK and decision.category == "bypass", decision


@pytest.mark.parametrize("name", ["proton.me", "mail.proton.me", "cloudflare.com", "opera.com"])
def test_the_vendors_main_services_stay_reachable(policy: Policy, name: str) -> None:
    decision = policy.decide(PROFILES["under-9"], name, NOON)
    assert decision.action is not Action.BLOCK, decision


def _small_policy(profile_block: str = "[]") -> Policy:
    builder = IndexBuilder()
    builder.add_many(builder.add_list(ListInfo("adult", "/a.txt")), ["school.example"])
    builder.add_many(builder.add_list(ListInfo("bypass", "/b.txt")), ["school.example"])
    nb = builder.add_list(ListInfo(NEVER_BLOCK_CATEGORY, "/nb.txt", allow=True))
    builder.add_many(nb, ["school.example"])
    built = builder.finish()
    text = CONFIG + f"  kid:\n    age_band: under-9\n    block: {profile_block}\n"
    return Policy(_config(text), lambda: built)


def test_never_block_excepts_every_category_and_explain_says_why() -> None:
    decision = _small_policy().decide("kid", "www.school.example", NOON, explain=True)
    assert decision.action is Action.ALLOW
    assert any("never-block" in line for line in decision.trace), decision.trace


def test_a_profiles_own_block_list_still_blocks_a_never_block_name() -> None:
    decision = _small_policy("[school.example]").decide("kid", "school.example", NOON)
    assert decision.action is Action.BLOCK and decision.rule == "profile block"
