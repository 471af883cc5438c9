"""The v2fly domain-list-community DSL: rules, attributes, includes, and a real data file."""

from __future__ import annotations

from pathlib import Path

import pytest

from filterdns.lists.parse import iter_file
from filterdns.lists.sourcereport import SourceReport
from filterdns.lists.v2fly import Rule, parse_rule, resolve

V2FLY = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "blocklists"
    / "v2fly-domain-list-community"
    / "data"
)

RULES: list[tuple[str, str, Rule | None]] = [
    ("blank", "   ", None),
    ("comment", "# Porn sites", None),
    ("bare", "example.com", Rule("domain", "example.com")),
    ("domain", "domain:example.com", Rule("domain", "example.com")),
    ("full", "full:www.example.com", Rule("full", "www.example.com")),
    ("include", "include:category-porn", Rule("include", "category-porn")),
    ("regexp", r"regexp:^x\.com$", Rule("regexp", r"^x\.com$")),
    ("keyword", "keyword:porn", Rule("keyword", "porn")),
    ("tags", "ads.example.com @ads @cn", Rule("domain", "ads.example.com", ("ads", "cn"))),
    ("include-filter", "include:google @-!cn", Rule("include", "google", ("-!cn",))),
    ("trailing-comment", "example.com # note", Rule("domain", "example.com")),
]


@pytest.mark.parametrize(("line", "rule"), [pytest.param(*c[1:], id=c[0]) for c in RULES])
def test_parse_rule(line: str, rule: Rule | None) -> None:
    assert parse_rule(line) == rule


def _write(directory: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")


def test_includes_are_followed_and_tagged_rules_can_be_left_out(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "top": "include:a\ninclude:b @ads\ninclude:top\nfull:top.example\n",
            "a": "a.example\nads.a.example @ads\nkeyword:a\n",
            "b": "b.example\nads.b.example @ads\n",
        },
    )
    every = [(r.kind, r.value) for r in resolve(tmp_path, "top")]
    assert every == [
        ("domain", "a.example"),
        ("domain", "ads.a.example"),
        ("keyword", "a"),
        ("domain", "ads.b.example"),  # `include:b @ads` takes only b's @ads rules
        ("full", "top.example"),
    ]
    no_ads = {r.value for r in resolve(tmp_path, "top", exclude=frozenset({"ads"}))}
    assert no_ads == {"a.example", "a", "top.example"}


@pytest.mark.skipif(not V2FLY.is_dir(), reason=f"v2fly data not found at {V2FLY}")
def test_real_file_through_the_generic_parser_and_with_includes() -> None:
    report = SourceReport("category-porn")
    names = {name for name, allow in iter_file(V2FLY / "category-porn", report) if not allow}
    assert report.skipped["v2fly_include"] > 50
    assert report.skipped["pattern_rule"] > 50
    assert "pornhub.com" not in names  # it lives in an included file
    resolved = {r.value for r in resolve(V2FLY, "category-porn") if r.kind in ("domain", "full")}
    assert {"pornhub.com", "xvideos.com"} <= resolved
    assert len(resolved) > len(names)
