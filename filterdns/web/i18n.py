"""The web app's texts in every language, and the language a request is shown in.

The catalogues are TOML files in `web/locale/`, one per area of the app and language:
`<area>.<lang>.toml` (`base.en.toml`, `base.vi.toml`, `child.vi.toml`...). All the files of a
language are read together; English (`en`) is the reference that holds every key, and a key
another language leaves out shows in English. The languages offered are the report's
(`querylog.translations.languages()`), so `web.language` and `report.lang` accept the same codes.

A request's language: the `lang` cookie (the switch at the bottom of every page), else
`web.language`, which the person who set the box up chose for its household or school (a phone
set to English in a Vietnamese family still shows Vietnamese until switched).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType

from filterdns.errors import FilterDnsError
from filterdns.querylog.translations import languages

REFERENCE = "en"
COOKIE = "lang"


@functools.cache
def texts(lang: str) -> Mapping[str, str]:
    """Every text of the web app in `lang` (English where it has none)."""
    english = _catalogue(REFERENCE)
    if lang == REFERENCE or lang not in languages():
        return english
    return MappingProxyType({**english, **_catalogue(lang)})


@functools.cache
def _catalogue(lang: str) -> Mapping[str, str]:
    merged: dict[str, str] = {}
    folder = resources.files("filterdns.web").joinpath("locale")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(f".{lang}.toml"):
            continue
        try:
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise FilterDnsError(f"web texts {entry.name}: {exc}") from None
        for key, value in data.items():
            if not isinstance(value, str):
                raise FilterDnsError(f"web texts {entry.name}: {key} is not text")
            if key in merged:
                raise FilterDnsError(f"web texts {entry.name}: {key} is also in another file")
            merged[key] = value
    return MappingProxyType(merged)


def choose(cookie: str | None, default: str) -> str:
    """The language of a request: its cookie's when we have it, else the configured one."""
    offered = languages()
    if cookie is not None and cookie in offered:
        return cookie
    return default if default in offered else REFERENCE
