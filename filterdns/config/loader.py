"""Reading a configuration file: every section by its module, the policy keys cross-checked, every
problem collected with its YAML path and line; and the embedded defaults.

`load_config(path)` / `load_config_text(text, source)` return a Config or raise ConfigError
listing every problem in file order. Unknown keys are rejected and wrong choices name the valid
ones. Missing keys take the embedded defaults (`default_config`: the dataclasses' own defaults,
adjusted to who runs the proxy).

The policy keys are checked across sections: categories named anywhere must be shipped ones or
names under `categories:`; age bands, profiles and calendars referred to must exist. Each such
problem names the valid choices.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from filterdns.config.alerts import read_alerts
from filterdns.config.bands import read_age_bands
from filterdns.config.clients import read_clients
from filterdns.config.lists import CATEGORY, DEFAULT_CATEGORIES, read_categories
from filterdns.config.localrecords import read_local_records
from filterdns.config.model import FIXED_SECTIONS, SECTIONS, TOP_LEVEL, Config
from filterdns.config.profiles import read_default_profile, read_profiles
from filterdns.config.readers import ConfigReader
from filterdns.config.schedules import read_calendars
from filterdns.config.server import ROOT_LISTEN
from filterdns.config.walker import (
    Node,
    compose,
    is_empty,
    is_mapping,
    is_null,
    keys_of,
    only_null_values,
    with_value,
)
from filterdns.errors import ConfigError, Problem

SYSTEM_CONFIG = Path("/etc/filterdns/config.yaml")
LOCAL_CONFIG = Path("config.yaml")
STATE_DIR_ENV = "FILTERDNS_STATE_DIR"
ROOT_STATE_DIR = Path("/var/lib/filterdns")
USER_STATE_DIR = Path("state")  # relative to the working directory: ./state/filterdns.db


def load_config_text(
    text: str,
    source: str = "<config>",
    base_dir: Path | None = None,
    *,
    defaults: Config | None = None,
) -> Config:
    """The configuration in `text`; missing keys take `defaults` (default: `default_config()`).

    `source` names the text in messages and becomes `Config.source`. Relative paths (the log
    database) are taken from `base_dir`, or left relative when it is None. Raises ConfigError
    with every problem found, in file order.
    """
    root, syntax = compose(text)
    if syntax is not None:
        raise ConfigError([syntax], source)
    if is_empty(root) or only_null_values(root):
        raise ConfigError([Problem("", _no_settings(text, root))], source)
    base = default_config() if defaults is None else defaults
    reader = ConfigReader(base_dir, DEFAULT_CATEGORIES)
    config = _build(reader, root, base, source)
    if reader.problems:
        raise ConfigError(reader.in_file_order(), source)
    return replace(config, text=text)


def load_config(path: str | Path) -> Config:
    """The configuration in the file at `path`; relative paths in it start from its directory."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise ConfigError([Problem("", f"cannot read {path}: {reason}")], str(path)) from None
    except UnicodeDecodeError:
        problem = Problem("", f"cannot read {path}: it is not UTF-8 text")
        raise ConfigError([problem], str(path)) from None
    return load_config_text(text, source=str(path), base_dir=path.absolute().parent)


def find_config(explicit: str | Path | None) -> Path | None:
    """`explicit` when given, else the system file, else ./config.yaml, else None (the defaults)."""
    if explicit is not None:
        return Path(explicit)
    for candidate in (SYSTEM_CONFIG, LOCAL_CONFIG):
        if candidate.is_file():
            return candidate
    return None


def default_config(is_root: bool | None = None, state_dir: Path | None = None) -> Config:
    """The embedded defaults (the section dataclasses' own), adjusted to who runs the proxy.

    Not root: listen on 127.0.0.1:5353 and [::1]:5353; root: 0.0.0.0:53 and [::]:53. The log
    database and the lists' cache live in `state_dir`, else $FILTERDNS_STATE_DIR, else
    /var/lib/filterdns for root, else ./state. Nothing is created here.
    """
    if is_root is None:
        is_root = os.geteuid() == 0
    if state_dir is None:
        from_env = os.environ.get(STATE_DIR_ENV)
        state_dir = Path(from_env) if from_env else ROOT_STATE_DIR if is_root else USER_STATE_DIR
    config = Config()
    if is_root:
        config = replace(config, server=replace(config.server, listen=ROOT_LISTEN))
    return in_state_dir(config, Path(state_dir))


def in_state_dir(config: Config, state_dir: Path) -> Config:
    """`config` with every path its sections keep under the state directory placed there."""
    changes: dict[str, Any] = {}
    for section in FIXED_SECTIONS:
        value = getattr(config, section.name)
        paths = {
            k.name: state_dir / getattr(value, k.name) for k in section.keys if k.state_relative
        }
        if paths:
            changes[section.name] = replace(value, **paths)
    return replace(config, **changes)


def _build(r: ConfigReader, root: Node | None, base: Config, source: str | None) -> Config:
    top = r.section(root, "", TOP_LEVEL, _notes(""))
    # Categories: the shipped ones, the base's and those named under `categories:` (even when
    # their sources have problems, so a reference to them is not a second problem).
    extra = [name for name, _ in base.categories]
    extra += [name for name in keys_of(top.get("categories")) if CATEGORY.fullmatch(name)]
    r.known_categories = tuple(dict.fromkeys((*DEFAULT_CATEGORIES, *extra)))
    values: dict[str, Any] = {}
    for section in FIXED_SECTIONS:
        before = getattr(base, section.name)
        values[section.name] = section.read(r, top.get(section.name), before, _notes(section.name))
        if section.name == "lists" and "categories" in top:  # read here since the beginning
            values["categories"] = read_categories(r, top["categories"], "categories")
    values["categories"] = values.get("categories") or base.categories
    values.update(_policy(r, top, base))
    if "alerts" in top:
        values["alerts"] = read_alerts(r, top["alerts"], "alerts")
    if "local_records" in top:
        values["local_records"] = read_local_records(r, top["local_records"], "local_records")
    return replace(base, **values, source=source, given=_given(top))


def _policy(r: ConfigReader, top: Mapping[str, Node], base: Config) -> dict[str, Any]:
    """calendars, age_bands, profiles, clients and default_profile, cross-checked."""
    calendars = base.calendars
    if "calendars" in top:
        calendars = read_calendars(r, top["calendars"], "calendars") or ()
        r.calendar_names = tuple(keys_of(top["calendars"]))
    r.known_calendars = calendars
    age_bands = read_age_bands(r, top.get("age_bands"), "age_bands", base.age_bands)
    profiles = base.profiles
    names = [p.name for p in profiles]
    node = top.get("profiles")
    if node is not None and not is_null(node) and not (is_mapping(node) and is_empty(node)):
        found, names = read_profiles(r, node, "profiles")
        # The embedded profiles stay (the household default among them) unless redefined.
        kept = [p for p in base.profiles if p.name not in names]
        profiles = (*found, *kept)
        names += [p.name for p in kept]
    values: dict[str, Any] = {"calendars": calendars, "age_bands": age_bands, "profiles": profiles}
    if "clients" in top:
        values["clients"] = read_clients(r, top["clients"], "clients", names)
    if "default_profile" in top:
        found_default = read_default_profile(r, top["default_profile"], "default_profile", names)
        if found_default is not None:
            values["default_profile"] = found_default
    return values


def _notes(here: str) -> dict[str, str]:
    """Notes for an unknown key in section `here`: where the key belongs, or that it is planned."""
    homes: dict[str, list[str]] = {}
    for name, keys in SECTIONS.items():
        if name != here:
            for key in keys:
                homes.setdefault(key, []).append(f"{name}:")
    notes = {key: f"{key!r} belongs under {' or '.join(where)}" for key, where in homes.items()}
    if here:
        notes.update(
            {name: f"{name!r} is a top-level section; check the indentation" for name in SECTIONS}
        )
    return notes


def _given(top: Mapping[str, Node]) -> tuple[str, ...]:
    """The top-level keys given a value, and `section.key` for the keys inside the sections."""
    given = [key for key, node in top.items() if not is_empty(node)]
    for name in SECTIONS:
        given += [f"{name}.{key}" for key in with_value(top.get(name))]
    return tuple(given)


def _no_settings(text: str, root: Node | None) -> str:
    """Why a file without a single setting is refused, and what to do instead.

    An empty file (or one cut right after its first key) is far more often a write cut short (a
    full disk, a crash, an editor that truncated before writing) than a wish to drop every rule,
    so it is never taken to mean "the defaults": every child would silently fall to the default
    profile.
    """
    if is_mapping(root) and not is_empty(root):
        keys = ", ".join(keys_of(root))
        what = f"holds no settings (only keys without a value: {keys})"
    elif not text:
        what = "is empty (0 bytes)"
    elif not text.strip():
        what = f"holds no settings ({len(text.encode())} bytes of blank space)"
    elif all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()):
        what = "holds no settings (only comments)"
    else:
        what = "holds no settings (an empty document)"
    return (
        f"the file {what}; it is never applied. Write the configuration back, or delete the "
        "file to run on the embedded defaults"
    )
