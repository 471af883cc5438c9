"""`age_bands:` the built-in age band table, and the file's overrides of it.

Each band presets the blocked categories, SafeSearch, the YouTube restriction and default
schedules (bedtime). `Config.age_bands` is the effective table: BAND_TABLE with the file's
overrides applied per key (`schedules: []` removes a band's bedtime); ALWAYS_BLOCKED is in every
band, whatever a file says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from filterdns.config.fragments import Schema, boolean, closed, enum, extend, ref
from filterdns.config.readers import ConfigReader, Key, choice, read_keys
from filterdns.config.schedules import ALWAYS_BLOCKED, ScheduleRule, read_schedules
from filterdns.config.walker import Node, join, show
from filterdns.policy.schedule import Window, parse_clock, parse_days


class YouTube(StrEnum):
    """The YouTube restriction: Restricted Mode strict, moderate, or none."""

    STRICT = "strict"
    MODERATE = "moderate"
    OFF = "off"


YOUTUBE_LEVELS = tuple(YouTube)  # from the most restricted to none
BANDS = ("under-9", "9-12", "13-15", "16-17", "adult")

# The built-in age bands (config.example.yaml documents the same table). Each row: band,
# blocked categories (ALWAYS_BLOCKED is added to each), SafeSearch, YouTube level, and the
# default "block all" schedules as (days, from, to).
# The name model's categories (adult-suspect, gambling-suspect) follow adult and gambling in
# every child band.
_CHILD_CATEGORIES = (
    "adult", "adult-suspect", "gambling", "gambling-suspect", "dating", "drugs", "violence",
    "social", "chat", "bypass", "piracy",
)  # fmt: skip
BandRow = tuple[str, tuple[str, ...], bool, YouTube, tuple[tuple[str, str, str], ...]]
BAND_TABLE: tuple[BandRow, ...] = (
    # Games too for the youngest: app stores rate most online games 9+ or 12+ (chat with
    # strangers, in-game purchases); a schedule (`allow_categories: [games]`) opens them.
    ("under-9", (*_CHILD_CATEGORIES, "games"), True, YouTube.STRICT,
     (("daily", "20:00", "07:00"),)),
    ("9-12", _CHILD_CATEGORIES, True, YouTube.STRICT,
     (("sun-thu", "21:00", "06:30"), ("fri-sat", "22:00", "07:00"))),
    ("13-15", ("adult", "adult-suspect", "gambling", "gambling-suspect", "dating", "drugs",
               "violence", "bypass", "piracy"), True, YouTube.MODERATE,
     (("sun-thu", "22:30", "06:00"),)),
    ("16-17", ("adult", "adult-suspect", "gambling", "gambling-suspect", "drugs", "bypass"), True,
     YouTube.OFF, ()),
    ("adult", (), False, YouTube.OFF, ()),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class BandConfig:
    """One age band as in effect: the built-in row with `age_bands:` overrides applied."""

    name: str
    categories: tuple[str, ...]  # blocked categories, always including ALWAYS_BLOCKED
    safesearch: bool
    youtube: YouTube
    schedules: tuple[ScheduleRule, ...]


def with_always_blocked(categories: Sequence[str]) -> tuple[str, ...]:
    """`categories` followed by the ALWAYS_BLOCKED ones not already in it."""
    return tuple(dict.fromkeys((*categories, *ALWAYS_BLOCKED)))


def _builtin(row: BandRow) -> BandConfig:
    name, categories, safesearch, youtube, windows = row
    rules = tuple(
        ScheduleRule(
            name="bedtime",
            window=Window(parse_days([days]), parse_clock(start), parse_clock(end, end=True)),
            block_all=True,
            path=f"age_bands.{name}.schedules[{index}]",
        )
        for index, (days, start, end) in enumerate(windows)
    )
    return BandConfig(name, with_always_blocked(categories), safesearch, youtube, rules)


BUILTIN_BANDS = tuple(_builtin(row) for row in BAND_TABLE)

# What a band may override; a band's name is its key.
BAND: tuple[Key[Any], ...] = (
    Key("categories", ConfigReader.category_list, extend(
        ref("categories"),
        description="Blocked categories (the whole list; malware, phishing, cryptojacking and "
        "stalkerware are always blocked)",
    )),
    Key("safesearch", ConfigReader.boolean, boolean("SafeSearch enforced")),
    Key("youtube", choice(YouTube), enum("YouTube restriction", YOUTUBE_LEVELS)),
    Key("schedules", read_schedules, extend(
        ref("schedules"),
        description="The band's schedules (the whole list; [] removes the bedtime)",
    )),
)  # fmt: skip
BAND_KEYS = tuple(key.name for key in BAND)


def read_age_bands(
    r: ConfigReader, node: Node | None, path: str, base: Sequence[BandConfig]
) -> tuple[BandConfig, ...]:
    """The effective bands: `base` with the overrides in `node` applied."""
    bands = {band.name: band for band in base}
    expected = "a mapping of age bands to overrides, e.g. {9-12: {youtube: moderate}}"
    for name, key_node, value in r.pairs(node, path, expected):
        band_path = join(path, name)
        known = name in bands
        if not known:
            message = f"{show(name)} is not an age band; valid bands: " + ", ".join(BANDS)
            r.problem(key_node, band_path, message)
        found = r.section(value, band_path, BAND_KEYS)
        # An unknown band's overrides are still checked (every problem in one pass), as if
        # they were the adult band's.
        band = bands[name] if known else bands["adult"]
        overridden = replace(band, **read_keys(r, found, band_path, BAND, band))
        if known:
            categories = with_always_blocked(overridden.categories)
            bands[name] = replace(overridden, categories=categories)
    return tuple(bands.values())


def read_band_name(r: ConfigReader, node: Node, path: str) -> str | None:
    """One of BANDS."""
    text = r.text(node, path, "an age band: " + ", ".join(BANDS))
    if text is None:
        return None
    if text.strip() not in BANDS:
        message = f"{show(text)} is not an age band; valid bands: " + ", ".join(BANDS)
        r.problem(node, path, message)
        return None
    return text.strip()


def age_bands_schema() -> Schema:
    """The schema of `age_bands:`: each band's keys, with the built-in table as defaults."""
    return {
        "description": "Overrides of the built-in age bands",
        "type": ["object", "null"],
        "properties": {row[0]: _band_schema(row) for row in BAND_TABLE},
        "additionalProperties": False,
        "default": {},
    }


def _band_schema(row: BandRow) -> Schema:
    name, categories, safesearch, youtube, windows = row
    rules = [
        {"name": "bedtime", "days": [days], "from": start, "to": end, "block": "all"}
        for days, start, end in windows
    ]
    defaults: dict[str, object] = {
        "categories": list(categories),
        "safesearch": safesearch,
        "youtube": youtube,
        "schedules": rules,
    }
    properties = {key.name: extend(key.schema, default=defaults[key.name]) for key in BAND}
    schema = closed(f"Overrides of the age band {name}", properties, BAND_KEYS)
    schema["type"] = ["object", "null"]
    return schema
