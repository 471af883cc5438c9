"""The report's message catalogues: one TOML file per language, found by looking at the files."""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from filterdns.config import REPORT_LANGUAGES
from filterdns.errors import FilterDnsError
from filterdns.querylog import translations

LOCALE = Path(str(resources.files("filterdns.querylog").joinpath("locale")))


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A locale folder of the test's own, holding a copy of the English catalogue."""
    (tmp_path / "en.toml").write_bytes((LOCALE / "en.toml").read_bytes())
    monkeypatch.setattr(translations, "_folder", lambda: tmp_path)
    for cached in (translations.languages, translations.catalogue, translations.texts):
        cached.cache_clear()
    yield tmp_path
    for cached in (translations.languages, translations.catalogue, translations.texts):
        cached.cache_clear()


def test_the_languages_are_the_catalogue_files() -> None:
    files = sorted(p.stem for p in LOCALE.glob("*.toml"))
    assert translations.languages() == tuple(files) == ("en", "vi")
    assert translations.languages() == REPORT_LANGUAGES  # what report.lang accepts


@pytest.mark.parametrize("lang", sorted(p.stem for p in LOCALE.glob("*.toml")))
def test_every_catalogue_has_the_english_keys_and_placeholders(lang: str) -> None:
    english, sut = translations.catalogue("en"), translations.catalogue(lang)
    assert set(sut) == set(english)
    for key, text in sut.items():
        assert _placeholders(text) == _placeholders(english[key]), key
        assert text.strip(), key
    assert len(sut["days"].split()) == 7
    assert not re.search(r"\[/?[a-z]", "".join(sut.values()))  # nothing that looks like markup


def test_a_new_file_is_a_new_language_and_missing_keys_show_in_english(folder: Path) -> None:
    (folder / "fr.toml").write_text('title = "Rapport des recherches bloquées"\n')
    assert translations.languages() == ("en", "fr")
    sut = translations.texts("fr")
    assert sut["title"] == "Rapport des recherches bloquées"
    assert sut["by_profile"] == "By profile"
    assert translations.texts("xx") == translations.texts("en")


def test_a_broken_catalogue_is_named(folder: Path) -> None:
    (folder / "de.toml").write_text('title = "Bericht\n')
    (folder / "es.toml").write_text("title = 3\n")
    with pytest.raises(FilterDnsError, match=r"report texts de\.toml"):
        translations.texts("de")
    with pytest.raises(FilterDnsError, match=r"es\.toml: not text: title"):
        translations.texts("es")
