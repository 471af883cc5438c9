"""The pure parts of `make lists-eval` (scripts/evalparts.py): the Vietnamese-subset rule,
the Markdown table, the hosts of Markdown links and the v2fly list DSL."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


evalparts = _load("evalparts")
datasplit = _load("datasplit")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("vnexpress.net", False),
        ("tuoitre.vn", True),
        ("hcmus.edu.vn", True),
        ("phimsexhay.net", True),
        ("www.sex-viet.club", True),
        ("vlxx.moe", True),
        ("keonhacai68.com", True),
        ("autotaixiu.me", True),
        ("xoso-mienbac.org", True),
        ("nohu52.com", True),
        ("fb88.com", True),
        ("m.new88vn.com", True),
        ("789bet.net", True),
        ("f8bet.io", True),
        ("kubet.com", True),
        ("alphabet.com", False),
        ("betway.com", False),
        ("bet365.com", False),
        ("pornhub.com", False),
        ("movn.com", False),
    ],
    ids=lambda value: str(value),
)
def test_vietnamese_subset(name: str, expected: bool) -> None:
    assert evalparts.is_vietnamese(name, datasplit.registrable) is expected


@pytest.mark.parametrize(
    ("markdown", "hosts"),
    [
        ("- https://vnexpress.net/ (news)", ["vnexpress.net"]),
        ("- https://Tuoitre.VN", ["tuoitre.vn"]),
        ("[Chinh phu](https://chinhphu.vn/portal) and https://moet.gov.vn:443/x", [
            "chinhphu.vn", "moet.gov.vn"]),
        ("- https://a.vn/ twice https://a.vn/b", ["a.vn"]),
        ("- http://plain.vn/ and ftp://x.vn", []),
        ("# Heading\n\nno links here", []),
        ("- https://localhost/", []),
    ],
    ids=["list-item", "case", "markdown-link-and-port", "once", "https-only", "none", "no-dot"],
)  # fmt: skip
def test_link_hosts(markdown: str, hosts: list[str]) -> None:
    assert evalparts.link_hosts(markdown) == hosts


def test_markdown_table_aligns_figures_right() -> None:
    table = evalparts.markdown_table(
        ["set", "names", "under-9"], [["top 10k", "10,000", "8.3%"], ["a|b", "7", "—"]]
    )
    assert table.splitlines() == [
        "| set | names | under-9 |",
        "|---|---:|---:|",
        "| top 10k | 10,000 | 8.3% |",
        "| a\\|b | 7 | — |",
    ]


def test_markdown_table_refuses_a_short_row() -> None:
    with pytest.raises(ValueError, match="2 cells for 3 headers"):
        evalparts.markdown_table(["a", "b", "c"], [["1", "2"]])


@pytest.mark.parametrize(
    ("part", "whole", "text"),
    [(1, 3, "33.3%"), (0, 5, "0.0%"), (5, 5, "100.0%"), (0, 0, "—")],
    ids=["third", "none", "all", "empty-set"],
)
def test_percent(part: int, whole: int, text: str) -> None:
    assert evalparts.percent(part, whole) == text


def test_v2fly_rules() -> None:
    text = (
        "# comment\n"
        "include:other\n"
        "example.com\n"
        "full:www.Example.org @ads\n"
        "domain:sub.example.net # trailing\n"
        "regexp:^ad[0-9]+\\.example\\.com$\n"
        "keyword:porn\n"
    )
    names, includes = evalparts.v2fly_rules(text)
    assert names == ["example.com", "www.example.org", "sub.example.net"]
    assert includes == ["other"]


def test_v2fly_names_follows_includes_once(tmp_path: Path) -> None:
    (tmp_path / "top").write_text("include:a\ninclude:b\ntop.com\n")
    (tmp_path / "a").write_text("include:top\na.com\n")
    (tmp_path / "b").write_text("b.com\ninclude:missing\n")
    assert sorted(evalparts.v2fly_names(tmp_path, "top")) == ["a.com", "b.com", "top.com"]
