"""The texts of reports in every language: one message catalogue per language.

A catalogue is a TOML file of `key = "text"` lines in `querylog/locale/`, named by its language
code (`en.toml`, `vi.toml`). The languages offered are the files there, so a translator adds a
language by adding a file: `--lang` and `report.lang` accept it without a change to the code.
`en.toml` is the reference: it holds every key, and a key another catalogue leaves out shows in
English. Only the standard library is used here (tomllib), so the configuration's check of
`report.lang` can ask `languages()`.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from filterdns.errors import FilterDnsError

REFERENCE = "en"  # the catalogue that holds every key
SUFFIX = ".toml"


def _folder() -> Path:
    # Beside this module, as the shipped lists are (lists/shipped.py): importlib.resources would
    # load zipfile into every server (about 0.5 MB) for a package that is never run zipped.
    return Path(__file__).resolve().parent / "locale"


@functools.cache
def languages() -> tuple[str, ...]:
    """The language codes that have a catalogue, sorted ("en", "vi", ...)."""
    return tuple(
        sorted(
            entry.name.removesuffix(SUFFIX)
            for entry in _folder().iterdir()
            if entry.name.endswith(SUFFIX) and entry.is_file()
        )
    )


@functools.cache
def catalogue(lang: str) -> Mapping[str, str]:
    """The texts of one catalogue as written (no English filled in); KeyError when none."""
    if lang not in languages():
        raise KeyError(lang)
    entry = _folder().joinpath(f"{lang}{SUFFIX}")
    try:
        data = tomllib.loads(entry.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise FilterDnsError(f"report texts {entry.name}: {exc}") from None
    wrong = sorted(key for key, value in data.items() if not isinstance(value, str))
    if wrong:
        raise FilterDnsError(f"report texts {entry.name}: not text: {', '.join(wrong)}")
    return MappingProxyType({key: str(value) for key, value in data.items()})


@functools.cache
def texts(lang: str) -> Mapping[str, str]:
    """Every text in `lang`: its catalogue over the English one (unknown languages: English)."""
    english = catalogue(REFERENCE)
    if lang == REFERENCE or lang not in languages():
        return english
    return MappingProxyType({**english, **catalogue(lang)})
