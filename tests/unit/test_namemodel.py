"""The name model: features and scoring on a hand-made model, the file, and the shipped model's
verdicts (the same probabilities as the dict form it had before its weights went into arrays)."""

from __future__ import annotations

import gzip
import json
import math
import re
from pathlib import Path

import pytest

from filterdns.lists import namemodel, nametable

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TINY = {
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
    "label",
    [
        pytest.param("nhacai88-vip", id="words-digits-hyphen"),
        pytest.param("", id="empty"),
        pytest.param("a", id="one-letter"),
        pytest.param("xn--bcher-kva", id="punycode"),
        pytest.param("đá-bóng", id="not-ascii"),
        pytest.param("x" * 63, id="longest-label"),
        pytest.param("y" * 70, id="longer-than-dns-allows"),
        pytest.param("casinoonlinevietnam-2026", id="long-word"),
    ],
)
def test_the_keys_scored_are_those_of_the_features(label: str) -> None:
    keys = namemodel.feature_keys(label, "com.vn")
    assert sorted(keys) == sorted(map(nametable.key, namemodel.features(label, "com.vn")))


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


def _dict_form(model: dict[str, object], name: str) -> tuple[float, ...]:
    """The probabilities as the model computed them when its weights were dicts."""
    found = namemodel.features(*(namemodel.split_name(name) or ("", "")))
    weights, bias = model["weights"], model["bias"]
    assert isinstance(weights, dict) and isinstance(bias, dict)
    return tuple(
        1 / (1 + math.exp(-(bias[c] + sum(weights[c].get(f, 0.0) for f in found))))
        for c in ("adult", "gambling")
    )


@pytest.mark.parametrize(
    "name",
    ["bet88.win", "sex-bet.com", "xxx.sex.vn", "example.com", "www.casino88.com.vn", "đá-bet.vn"],
)
def test_the_compact_model_scores_as_the_dict_form(name: str) -> None:
    compact = namemodel.from_dict(TINY).probabilities(name)
    assert compact == pytest.approx(_dict_form(TINY, name), abs=1e-12)


def test_probabilities_are_the_logistic_of_bias_plus_weights() -> None:
    adult, gambling = namemodel.from_dict(TINY).probabilities("bet88.win") or (0, 0)
    assert gambling == pytest.approx(1 / (1 + 2.718281828459045 ** -(-4 + 4 + 2 + 1)))
    assert adult == pytest.approx(1 / (1 + 2.718281828459045**4))


def test_a_site_is_scored_once() -> None:
    model = namemodel.from_dict(TINY)
    model.score("a.bet88.win")
    model.table = nametable.build([{}, {}])  # a second scoring would find nothing now
    assert model.score("b.bet88.win") is not None


# The file


def test_a_model_file_reads_back_as_written(tmp_path: Path) -> None:
    model = namemodel.from_dict(TINY)
    data = namemodel.to_bytes(model, {"seed": 1})
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    read = namemodel.load(path)
    assert (read.categories, read.bias, read.thresholds) == (
        model.categories, model.bias, model.thresholds
    )  # fmt: skip
    assert read.probabilities("bet88.win") == model.probabilities("bet88.win")
    assert namemodel.to_bytes(read, {"seed": 1}) == data  # byte-identical
    assert namemodel.to_bytes(namemodel.from_dict(TINY), {"seed": 1}) == data  # deterministic


def _table_at(data: bytes) -> int:
    """Where the weight table starts: after the JSON header (one object, no nested one)."""
    return data.index(b"}") + 1


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1 :]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(lambda d: _flip(d, len(d) - 3), "damaged", id="a-weight-flipped"),
        pytest.param(lambda d: _flip(d, len(d) // 2 + 40), "damaged", id="a-key-flipped"),
        pytest.param(lambda d: d.replace(b"-4.0", b"-3.0", 1), "damaged", id="a-bias-changed"),
        pytest.param(lambda d: d[:-7], "cut short", id="cut-short"),
        pytest.param(lambda d: d[: _table_at(d) + 16 + 5], "cut short", id="cut-in-the-keys"),
        pytest.param(
            lambda d: d[: _table_at(d)] + b"\xff" * 4 + d[_table_at(d) + 4 :],
            "damaged .*out of bounds",
            id="huge-size",
        ),
        pytest.param(lambda d: d[: len(namemodel.MAGIC) + 3], "not a name model", id="no-header"),
        pytest.param(lambda d: b"#" + d[1:], "not a name model", id="not-the-magic"),
        pytest.param(
            lambda d: d.replace(b"\n\x02\x00", b"\n\x03\x00", 1), "format 3", id="format-3"
        ),
        pytest.param(
            lambda d: gzip.compress(json.dumps({**TINY, "format": 1}).encode()),
            "format 1 .* no longer read: retrain",
            id="format-1-json",
        ),
    ],
)
def test_a_damaged_or_foreign_file_is_refused_with_its_name(
    tmp_path: Path, damage: object, message: str
) -> None:
    path = tmp_path / "model.bin"
    assert callable(damage)
    path.write_bytes(damage(namemodel.to_bytes(namemodel.from_dict(TINY))))
    with pytest.raises(ValueError, match=f"name model {re.escape(str(path))}: {message}"):
        namemodel.load(path)


# The shipped model


def test_the_shipped_model_is_the_trained_one() -> None:
    model = namemodel.shipped()
    assert model.categories == ("adult", "gambling")
    assert model.thresholds == (0.9919, 0.2677)
    assert model.table.count() == 226786  # blocklists/name-model.md
    assert model.table.size < 256 * 1024  # slots: 8 + 2 * 2 bytes each


# Computed with the dict form of the same weights (format 1, before they went into arrays).
DICT_FORM = [
    ("sexviet-moi-2026.com", (0.999922542, 0.000292223)),
    ("phimsexhay-2026.net", (0.999923313, 0.000185235)),
    ("nhacai88-vip.net", (0.14266861, 0.893528416)),
    ("taixiu-online99.club", (0.027006495, 0.977385724)),
    ("google.com", (0.007976081, 0.001247083)),
    ("vnexpress.net", (0.070482577, 0.002652227)),
    ("mit.edu", (0.000733976, 0.000891512)),
    ("www.bet365.com", (0.002619105, 0.746361492)),
    ("xn--bcher-kva.de", (0.565545615, 0.000617817)),
    ("đá-bóng.vn", (0.143526954, 0.002510649)),
    ("a.b.c.example.co.uk", (0.157984699, 0.00173035)),
    ("x.com", (0.206639827, 0.008546078)),
]


@pytest.mark.parametrize(("name", "expected"), [pytest.param(*c, id=c[0]) for c in DICT_FORM])
def test_the_shipped_model_scores_as_its_dict_form_did(
    name: str, expected: tuple[float, float]
) -> None:
    assert namemodel.shipped().probabilities(name) == pytest.approx(expected, abs=1e-9)


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
