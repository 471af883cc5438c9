"""`profiles:` one child, class or group each (an age band plus its own additions), and
`default_profile:` the profile of every device no client rule names.

Profiles defined in a file are added to the embedded `household` profile (the `13-15`
categories, SafeSearch, no bedtime; a file's own `household` replaces it). Devices no client
rule matches get `default_profile`, which is `household` unless the file names another one:
without a file, or before a child is named, nothing is served unfiltered.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from filterdns.config.bands import BANDS, YOUTUBE_LEVELS, YouTube, read_band_name
from filterdns.config.budgets import BudgetConfig, budget_definition, read_budgets
from filterdns.config.fragments import (
    NAME_KEY_PATTERN,
    Schema,
    boolean,
    closed,
    enum,
    extend,
    list_of,
    mapping_of,
    ref,
    string,
)
from filterdns.config.readers import ConfigReader, Key, choice, documented, read_keys
from filterdns.config.schedules import ScheduleRule, read_bedtime, read_schedules
from filterdns.config.walker import Node, join, show
from filterdns.regexes import MAX_PER_LIST, is_regex


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    """`profiles.<name>`: one child, class or group: an age band plus its own additions."""

    name: str
    age_band: str
    # Extra blocked domains (normalized; a domain blocks its subdomains) and `/regex/` entries.
    block: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()  # always-allowed domains and `/regex/` entries
    categories: tuple[str, ...] = ()  # extra blocked categories
    safesearch: bool | None = None  # None: the band's
    youtube: YouTube | None = None  # None: the band's
    schedules: tuple[ScheduleRule, ...] = ()  # in addition to the band's
    timezone: str | None = None  # None: server.timezone
    band_schedules: bool = True  # False: the band's default schedules (bedtime) do not apply
    # None: the band's bedtime; else the profile's own, which replaces the band's rules named
    # bedtime (every built-in band schedule); () is no bedtime at all.
    bedtime: tuple[ScheduleRule, ...] | None = None
    display_name: str | None = None  # how people call it, any text: "Bình (lớp 6A)"
    budgets: tuple[BudgetConfig, ...] = ()  # minutes a day of some categories


# Every device no client rule names gets this unless the file names a `default_profile`: a
# filter that protects before anyone wrote a file (a bedtime needs a named child).
HOUSEHOLD = ProfileConfig(name="household", age_band="13-15", band_schedules=False)
_BLANK = ProfileConfig("", "")


def _display_name(r: ConfigReader, node: Node, path: str) -> str | None:
    """Any text of 1 to 64 characters without control characters, NFC-normalised."""
    text = r.text(node, path, 'a name for people, e.g. "Bình (lớp 6A)"')
    if text is None:
        return None
    text = unicodedata.normalize("NFC", text.strip())
    if not 0 < len(text) <= 64 or any(unicodedata.category(c)[0] == "C" for c in text):
        message = f"{show(text)} is not a display name: 1 to 64 characters, no control ones"
        r.problem(node, path, message)
        return None
    return text


PROFILE: tuple[Key[Any], ...] = (
    Key("age_band", read_band_name, enum("The age band (required)", BANDS)),
    Key("block", ConfigReader.entries, list_of(ref("domain"),
        "Extra domains blocked at all times; `/regex/` entries are searched in the name")),
    Key("allow", ConfigReader.entries, list_of(ref("domain"),
        "Domains allowed at all times; `/regex/` entries are searched in the name")),
    Key("categories", ConfigReader.category_list,
        extend(ref("categories"), description="Extra categories blocked")),
    Key("safesearch", ConfigReader.optional_boolean, boolean("SafeSearch; default: the band's")),
    Key("youtube", choice(YouTube),
        enum("YouTube restriction; default: the band's", YOUTUBE_LEVELS)),
    Key("schedules", read_schedules,
        extend(ref("schedules"), description="Rules added to the band's schedules")),
    Key("timezone", ConfigReader.timezone, string(
        "An IANA time zone for this profile's schedules; default: server.timezone",
        examples=["Europe/Berlin"],
    )),
    Key("bedtime", read_bedtime, {
        "description": "The profile's own bedtime (everything blocked), replacing the band's "
        'bedtime: {from: "21:30", to: "06:30", days: [sun-thu]}, a list of them, or [] for none',
        "anyOf": [ref("bedtime"), {"type": "array", "items": ref("bedtime")}],
    }),
    Key("band_schedules", ConfigReader.boolean, boolean(
        "Whether the band's default schedules (its bedtime) apply to this profile"
    )),
    Key("display_name", _display_name, string(
        'How people call the profile in reports, tail and alerts, e.g. "Bình (lớp 6A)"',
        minLength=1,
        maxLength=64,
    )),
    Key("budgets", read_budgets, list_of(budget_definition(),
        "Time budgets: minutes a day of some categories, then blocked until midnight")),
)  # fmt: skip
PROFILE_KEYS = tuple(key.name for key in PROFILE)


def read_profiles(
    r: ConfigReader, node: Node | None, path: str
) -> tuple[list[ProfileConfig], list[str]]:
    """The profiles in `node`, and the names of all of them (bad ones too)."""
    found: list[ProfileConfig] = []
    names: list[str] = []
    expected = "a mapping of profile names to profiles, e.g. {minh: {age_band: 9-12}}"
    for key, key_node, value in r.pairs(node, path, expected):
        name = unicodedata.normalize("NFC", key)
        before = len(r.problems)
        # A bad name is one problem; what the profile holds is still checked, so every
        # problem shows in one pass.
        r.name_key(name, key_node, join(path, name), "profile")
        names.append(name)  # a bad name is not also an unknown profile where it is used
        profile = _profile(r, key_node, value, join(path, name))
        if len(r.problems) == before:
            found.append(replace(profile, name=name))
    return found, names


def _profile(r: ConfigReader, key_node: Node, node: Node, path: str) -> ProfileConfig:
    """One profile's keys; the problems in the order a reader meets them."""
    found = r.section(node, path, PROFILE_KEYS)
    values = read_keys(r, found, path, PROFILE[:1], _BLANK)
    if "age_band" not in found:
        r.problem(key_node, path, "needs age_band: one of " + ", ".join(BANDS))
    values.update(read_keys(r, found, path, PROFILE[1:3], _BLANK))
    for key in ("block", "allow"):
        regexes = sum(map(is_regex, values.get(key) or ()))
        if regexes > MAX_PER_LIST:
            message = f"{regexes} /regex/ entries: at most {MAX_PER_LIST} (each costs a search)"
            r.problem(found[key], join(path, key), message)
    for domain in sorted(set(values["block"]) & set(values["allow"])):
        message = f"{show(domain)} is both blocked (block:) and allowed here"
        r.problem(found["allow"], join(path, "allow"), message)
    values.update(read_keys(r, found, path, PROFILE[3:], _BLANK))
    return replace(_BLANK, **values)


def read_default_profile(
    r: ConfigReader, node: Node, path: str, names: Sequence[str]
) -> str | None:
    """The name of one of the profiles `names`."""
    text = r.text(node, path, "a profile name")
    if text is None:
        return None
    text = unicodedata.normalize("NFC", text.strip())
    if text not in names:
        r.problem(node, path, f"{show(text)} is not a profile; profiles: {', '.join(names)}")
        return None
    return text


def profile_definition() -> Schema:
    """The shared `$defs/profile`: one profile's keys."""
    properties = documented(PROFILE, ProfileConfig)
    schema = closed("A profile: one child, class or group", properties, PROFILE_KEYS)
    schema["required"] = ["age_band"]
    return schema


def profiles_schema(default: Sequence[ProfileConfig]) -> Schema:
    """The schema of `profiles:`."""
    return mapping_of(
        "Profiles: one child, class or group each; they replace the default one",
        ref("profile"),
        {"pattern": NAME_KEY_PATTERN},
        default={p.name: {"age_band": p.age_band} for p in default},
    )


def default_profile_schema(default: str) -> Schema:
    """The schema of `default_profile:`."""
    return string("The profile of every client no entry matches", minLength=1, default=default)
