"""The name model: features and scoring on a hand-made model, and the shipped model's verdicts."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from filterdns.lists import namemodel

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TINY = {
    "format": 1,
    "categories": ["adult", "gambling"],
    "bias": {"adult": -4.0, "gambling": -4.0},
    "thresholds": {"adult": 0.8, "gambling": 0.5},
    "weights": {
        "adult": {"sex": 3.0, "w:sex": 3.0, "^xx": 1.0},
        "gambling": {"w:bet": 4.0, "d:88": 2.0, "t:win": 1.0},
    },
}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("www.nhacai88.com.vn", ("nhacai88", "com.vn"), id="country-second-level"),
        pytest.param("a.b.example.com", ("example", "com"), id="subdomain"),
        pytest.param("example.vn", ("example", "vn"), id="apex"),
        pytest.param("localhost", None, id="one-label"),
        pytest.param("1.0.0.127.in-addr.arpa", None, id="reverse"),
        pytest.param("printer.local", None, id="local"),
        pytest.param("router.lan", None, id="lan"),
    ],
)
def test_a_name_is_scored_by_its_registrable_domain(
    name: str, expected: tuple[str, str] | None
) -> None:
    assert namemodel.split_name(name) == expected


def test_features_are_ngrams_runs_suffix_and_shape() -> None:
    found = namemodel.features("bet88-vip", "win")
    assert {"^be", "^bet", "^bet8", "vip$", "ip$"} <= set(found)
    assert {"w:bet", "w:vip", "d:88", "t:win", "h:1"} <= set(found)
    assert all(len(f) <= 5 for f in found if ":" not in f)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("bet88.win", "gambling-suspect", id="gambling-words"),
        pytest.param("cdn.bet88.win", "gambling-suspect", id="subdomain-scored-by-site"),
        pytest.param("sex.com", "adult-suspect", id="adult-word"),
        pytest.param("sex-bet.com", "adult-suspect", id="best-category-wins"),
        pytest.param("example.com", None, id="nothing-above-threshold"),
        pytest.param("bet.lan", None, id="not-a-site"),
    ],
)
def test_score_names_the_most_likely_category_over_its_threshold(
    name: str, expected: str | None
) -> None:
    scored = namemodel.from_dict(TINY).score(name)
    assert (scored[0] if scored else None) == expected


def test_probabilities_are_the_logistic_of_bias_plus_weights() -> None:
    adult, gambling = namemodel.from_dict(TINY).probabilities("bet88.win") or (0, 0)
    assert gambling == pytest.approx(1 / (1 + 2.718281828459045 ** -(-4 + 4 + 2 + 1)))
    assert adult == pytest.approx(1 / (1 + 2.718281828459045**4))


def test_a_site_is_scored_once() -> None:
    model = namemodel.from_dict(TINY)
    model.score("a.bet88.win")
    model.weights[1].clear()  # a second scoring would find nothing now
    assert model.score("b.bet88.win") is not None


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.json.gz"
    path.write_bytes(gzip.compress(json.dumps({**TINY, "format": 99}).encode()))
    with pytest.raises(ValueError, match="format 99"):
        namemodel.load(path)


# The shipped model


@pytest.mark.parametrize(
    ("name", "category"),
    [
        pytest.param("sexviet-moi-2026.com", "adult-suspect", id="vietnamese-porn"),
        pytest.param("phimsexhay-2026.net", "adult-suspect", id="phimsex"),
        pytest.param("nhacai88-vip.net", "gambling-suspect", id="nha-cai"),
        pytest.param("taixiu-online99.club", "gambling-suspect", id="tai-xiu"),
    ],
)
def test_the_shipped_model_flags_made_up_names(name: str, category: str) -> None:
    scored = namemodel.shipped().score(name)
    assert scored is not None and scored[0] == category


def test_the_shipped_model_is_off_for_everyday_names() -> None:
    model = namemodel.shipped()
    names = ["google.com", "vnexpress.net", "hocmai.vn", "chinhphu.vn", "mit.edu", "shopee.vn"]
    assert [n for n in names if model.score(n) is not None] == []


def _data_names() -> list[str]:
    hipo = "toplists/hipo-university-domains-list/world_universities_and_domains.json"
    universities = DATA / hipo
    vietnamese = DATA / "toplists/commoncrawl-web-languages/vietnamese.md"
    if not universities.exists() or not vietnamese.exists():
        pytest.skip("../shared/data is not here")
    entries = json.loads(universities.read_text(encoding="utf-8"))
    names = [d.lower() for e in entries for d in e["domains"]]
    names += re.findall(r"https?://([a-z0-9.-]+)", vietnamese.read_text(encoding="utf-8").lower())
    return names


def test_the_shipped_model_flags_almost_no_university_or_vietnamese_site() -> None:
    names = _data_names()
    model = namemodel.shipped()
    flagged = [n for n in names if model.score(n) is not None]
    assert len(flagged) <= len(names) // 1000, flagged
