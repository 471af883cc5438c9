"""Regex rules: refused shapes, adblock `/…/` lines, the index (in memory and on disk), the
policy (list rules with their category and `@@` exceptions, a profile's own entries, explain)
and the configuration."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from filterdns.config import Config, default_config, load_config_text
from filterdns.errors import ConfigError
from filterdns.lists.index import DomainIndex
from filterdns.lists.indexbuild import IndexBuilder
from filterdns.lists.indexfile import ListInfo, RegexEntry
from filterdns.lists.parse import parse_bytes
from filterdns.policy.decisions import Policy
from filterdns.regexes import MAX_PATTERN, MAX_PER_LIST, compile_rule

# --- the shapes a rule may take -------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param(r"^ad[s]?\d*\.", id="ads-prefix"),
        pytest.param(r"^(.+[_.-])?telemetry[_.-]", id="optional-group-with-repeat"),
        pytest.param(r"^(?:ads|track)\.", id="alternation-not-repeated"),
        pytest.param(r"(a|b)*c", id="single-characters-repeated"),
        pytest.param(r"^[a-z]{2,8}[0-9]+\.cdn\.", id="bounded-then-unbounded"),
    ],
)
def test_safe_patterns_compile_case_insensitively(pattern: str) -> None:
    sut = compile_rule(pattern)
    assert sut.flags & 2  # re.IGNORECASE


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        pytest.param("(a+)+$", "repeat inside a repeat", id="nested-plus"),
        pytest.param("(?:x*y)*z", "repeat inside a repeat", id="nested-star"),
        pytest.param("(.*a){12}", "repeat inside a repeat", id="unbounded-in-counted"),
        pytest.param("(a|ab)*c", "alternation inside a repeat", id="overlapping-alternation"),
        pytest.param(r"(ad)\1", "back-references", id="back-reference"),
        pytest.param("ad[s", "not a valid regex", id="unterminated-class"),
        pytest.param("", "empty regex", id="empty"),
        pytest.param("a" * (MAX_PATTERN + 1), f"at most {MAX_PATTERN}", id="too-long"),
    ],
)
def test_risky_or_broken_patterns_are_refused_with_a_reason(pattern: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        compile_rule(pattern)


# --- lines of a list ------------------------------------------------------------------------

REGEX_LINES = [
    # (id, line, regexes kept as (pattern, is_allow), skipped)
    ("block", r"/^ad[s]?\d*\./", [(r"^ad[s]?\d*\.", False)], {}),
    ("options-dropped", r"/^ads?[0-9]+[.]/$important,third-party", [("^ads?[0-9]+[.]", False)], {}),
    ("exception", r"@@/^cdn[.]/", [("^cdn[.]", True)], {}),
    ("dollar-anchor-inside", "/^ads[.]example[.]com$/", [("^ads[.]example[.]com$", False)], {}),
    ("telemetry", r"/^(.+[_.-])?telemetry[_.-]/", [(r"^(.+[_.-])?telemetry[_.-]", False)], {}),
    ("path-regex", r"/ads\/banner[0-9]+/", [], {"url_rule": 1}),
    ("badfilter", "/^ads[.]/$badfilter", [], {"unsupported_option": 1}),
    ("catastrophic", "/(a+)+b/", [], {"bad_regex": 1}),
    ("invalid", "/ad[s/", [], {"bad_regex": 1}),
    ("back-reference", r"/(ad)\1/", [], {"bad_regex": 1}),
]


@pytest.mark.parametrize(
    ("line", "kept", "skipped"), [pytest.param(*case[1:], id=case[0]) for case in REGEX_LINES]
)
def test_regex_lines(line: str, kept: list[tuple[str, bool]], skipped: dict[str, int]) -> None:
    names, report = parse_bytes(line.encode(), "rules.txt")
    assert names == []
    assert [(pattern, allow) for pattern, allow, _line in report.regexes] == kept
    assert dict(report.skipped) == skipped
    assert report.regex_entries == len(kept)
    assert report.entries == sum(not allow for _p, allow in kept)
    assert report.allow_entries == sum(allow for _p, allow in kept)
    for reason in skipped:  # counted with its line, never fatal
        assert report.examples[reason] == [f"rules.txt:1: {line}"]


def test_regex_rules_keep_their_line_beside_the_names() -> None:
    data = b"! title\nads.example\n/^ads[0-9]+[.]/\n0.0.0.0 track.example\n@@/^ok[.]/\n"
    names, report = parse_bytes(data, "mixed.txt")
    assert names == [("ads.example", False), ("track.example", False)]
    assert report.regexes == [("^ads[0-9]+[.]", False, 3), ("^ok[.]", True, 5)]


def test_a_list_keeps_at_most_the_limit_of_regex_rules() -> None:
    data = "\n".join(f"/^ads{i}[.]/" for i in range(MAX_PER_LIST + 2)).encode()
    _names, report = parse_bytes(data, "many.txt")
    assert len(report.regexes) == MAX_PER_LIST
    assert report.skipped == {"regex_limit": 2}
    assert (
        report.examples["regex_limit"][0] == f"many.txt:{MAX_PER_LIST + 1}: /^ads{MAX_PER_LIST}[.]/"
    )


# --- the index ------------------------------------------------------------------------------

ADS = ListInfo("ads", "lists/ads.txt")
ADS_ALLOW = ListInfo("ads", "lists/ads.txt", allow=True)


@pytest.fixture(params=["memory", "file"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Path | None:
    return tmp_path / "index.bin" if request.param == "file" else None


def _index(where: Path | None, *, discard_allow: bool = False) -> DomainIndex:
    builder = IndexBuilder()
    block, allow = builder.add_list(ADS), builder.add_list(ADS_ALLOW)
    builder.add_many(block, ["ads.example"])
    builder.add_regex(block, r"^ad[s]?\d*\.", 4)
    builder.add_regex(allow, "^ads1[.]good[.]", 9)
    if discard_allow:
        builder.discard(allow)
    return builder.finish(where, "fp")


def test_regex_rules_survive_the_index_file(where: Path | None) -> None:
    built = _index(where)
    built.close()
    sut = DomainIndex.open(where, "fp") if where is not None else _index(None)
    assert sut is not None
    assert sut.regexes == (RegexEntry(0, r"^ad[s]?\d*\.", 4), RegexEntry(1, "^ads1[.]good[.]", 9))
    assert [r.line for r in sut.match_regex("ads1.good.example")] == [4, 9]
    assert [r.line for r in sut.match_regex("ADS7.tracker.example")] == [4]
    assert sut.match_regex("badsite.example") == []
    sut.close()


def test_a_discarded_list_keeps_no_regex_rule(where: Path | None) -> None:
    sut = _index(where, discard_allow=True)
    assert [r.list_id for r in sut.regexes] == [0]
    sut.close()


# --- the policy -----------------------------------------------------------------------------

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=TZ).timestamp()  # a Monday, no schedule active
CONFIG = """\
server: {timezone: Asia/Ho_Chi_Minh}
profiles:
  minh:
    age_band: 9-12
    band_schedules: false
    allow: ["/^(www[.])?kids[a-z]*[.]casino[.]example$/"]
    block: [roblox.com, "/^tiktok[0-9]*[.]/"]
  grownup: {age_band: adult}
default_profile: minh
"""
GAMBLING = ListInfo("gambling", "/lists/gambling.txt")
GAMBLING_ALLOW = ListInfo("gambling", "/lists/gambling.txt", allow=True)


def config(text: str = CONFIG) -> Config:
    defaults = default_config(is_root=False)
    return load_config_text(textwrap.dedent(text), source="<test>", defaults=defaults)


def policy() -> Policy:
    builder = IndexBuilder()
    block, allow = builder.add_list(GAMBLING), builder.add_list(GAMBLING_ALLOW)
    builder.add_many(block, ["casino.example"])
    builder.add_regex(block, r"^(.+[.])?casino[0-9]+[.]", 3)
    builder.add_regex(allow, r"^fair[.]", 7)
    built = builder.finish()
    return Policy(config(), lambda: built)


@pytest.mark.parametrize(
    ("profile", "name", "action", "step", "listed", "source"),
    [
        pytest.param("minh", "www.casino77.example", "block", 6, r"/^(.+[.])?casino[0-9]+[.]/",
                     "/lists/gambling.txt:3", id="list-regex-in-blocked-category"),
        pytest.param("grownup", "www.casino77.example", "allow", 8, None, None,
                     id="list-regex-category-not-blocked"),
        pytest.param("minh", "fair.casino77.example", "allow", 8, None, None,
                     id="list-regex-excepted-by-@@-regex"),
        pytest.param("minh", "tiktok3.example", "block", 6, "/^tiktok[0-9]*[.]/", None,
                     id="profile-regex-block"),
        pytest.param("minh", "kidsgames.casino.example", "allow", 3, None, None,
                     id="profile-regex-allow-beats-category"),
        pytest.param("minh", "casino77example.org", "allow", 8, None, None, id="no-match"),
    ],
)  # fmt: skip
def test_regex_decisions(
    profile: str, name: str, action: str, step: int, listed: str | None, source: str | None
) -> None:
    sut = policy().decide(profile, name, NOON)
    assert (sut.action, sut.step, sut.listed, sut.source) == (action, step, listed, source)
    if step == 6:
        assert sut.category == ("gambling" if source else None)


def test_explain_shows_the_pattern_and_its_line() -> None:
    sut = policy().decide("minh", "www.casino77.example", NOON, explain=True)
    assert sut.trace[-1] == (
        r"6. blocked: /^(.+[.])?casino[0-9]+[.]/ is in gambling (/lists/gambling.txt:3)"
    )
    assert r"/^(.+[.])?casino[0-9]+[.]/ is listed in /lists/gambling.txt:3" in sut.reason


def test_explain_shows_the_exception_pattern() -> None:
    sut = policy().decide("minh", "fair.casino77.example", NOON, explain=True)
    assert any(
        "is excepted from gambling by an allow entry in /lists/gambling.txt:7" in line
        and "/^fair[.]/" in line
        for line in sut.trace
    )


def test_explain_shows_a_profile_pattern() -> None:
    sut = policy().decide("minh", "kidsgames.casino.example", NOON, explain=True)
    step3 = [line for line in sut.trace if line.startswith("3.")]
    assert "matches /^(www[.])?kids[a-z]*[.]casino[.]example$/" in step3[0]


# --- the configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        pytest.param("/(a+)+/", "repeat inside a repeat", id="catastrophic"),
        pytest.param("/ad[s/", "not a valid regex", id="invalid"),
    ],
)
def test_a_bad_profile_regex_is_a_problem_with_path_and_line(entry: str, says: str) -> None:
    text = CONFIG.replace('"/^tiktok[0-9]*[.]/"', f'"{entry}"')
    with pytest.raises(ConfigError) as caught:
        config(text)
    (problem,) = caught.value.problems
    assert problem.path == "profiles.minh.block[1]"
    assert problem.line == 7
    assert says in problem.message


def test_a_profile_holds_at_most_the_limit_of_regex_entries() -> None:
    many = ", ".join(f'"/^kid{i}[.]/"' for i in range(MAX_PER_LIST + 1))
    text = CONFIG.replace(
        'allow: ["/^(www[.])?kids[a-z]*[.]casino[.]example$/"]', f"allow: [{many}]"
    )
    with pytest.raises(ConfigError) as caught:
        config(text)
    (problem,) = caught.value.problems
    assert problem.path == "profiles.minh.allow"
    assert f"{MAX_PER_LIST + 1} /regex/ entries: at most {MAX_PER_LIST}" in problem.message


def test_a_repeated_name_is_not_searched_again() -> None:
    sut = policy()
    searched: list[str] = []

    def search(name: str) -> None:
        searched.append(name)

    profile = sut.profiles["minh"]
    profile.block_regexes = (("/counted/", search), *profile.block_regexes)
    for _ in range(3):
        assert sut.decide("minh", "tiktok3.example", NOON).action == "block"
    assert searched == ["tiktok3.example"]
