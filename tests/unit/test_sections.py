"""One YAML section, one module: each section module holds everything about its keys.

A key is its dataclass field (with the default), its `Key` (reader, JSON Schema, how default.yaml
writes it) and its lines in config.example.yaml; the loader, the schema and default.yaml take
them from the module. These tests fail when one of those is missing or they disagree.
"""

from __future__ import annotations

import sys
from dataclasses import fields
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from yaml.nodes import MappingNode

from filterdns.config import FIXED_SECTIONS, POLICY_KEYS, Config, default_config, load_config_text
from filterdns.config.defaults import default_yaml, flow_yaml
from filterdns.config.readers import Key, Section
from filterdns.config.schema import config_schema
from filterdns.config.walker import compose

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = (REPO / "config.example.yaml").read_text(encoding="utf-8")
STATE = Path("/srv/state")
REGENERATE = "python -m filterdns.config.defaults > filterdns/config/default.yaml"


def _example_keys(section: str) -> tuple[str, ...]:
    root, problem = compose(EXAMPLE)
    assert problem is None and isinstance(root, MappingNode)
    for key, value in root.value:
        if key.value == section:
            assert isinstance(value, MappingNode)
            return tuple(k.value for k, _ in value.value)
    return ()


@pytest.mark.parametrize("section", FIXED_SECTIONS, ids=lambda s: s.name)
def test_a_section_module_holds_its_dataclass_keys_and_schema(section: Section[Any]) -> None:
    module = sys.modules[section.kind.__module__]
    assert module.__name__ == f"filterdns.config.{section.name}"
    assert module.SECTION is section
    derived = getattr(module, "DERIVED", ())  # fields read from another key (log.url)
    names = tuple(f.name for f in fields(section.kind) if f.name not in derived)
    assert section.names == names  # every field is read, nothing else is
    schema = config_schema()["properties"][section.name]
    assert tuple(schema["properties"]) == names
    for key in section.keys:
        assert schema["properties"][key.name]["description"], key.name
        assert ("default" in schema["properties"][key.name]) is not key.state_relative, key.name
    assert _example_keys(section.name) == names  # config.example.yaml documents each key


def _keys() -> list[tuple[Section[Any], Key[Any]]]:
    return [(section, key) for section in FIXED_SECTIONS for key in section.keys]


@pytest.mark.parametrize(
    ("section", "key"),
    _keys(),
    ids=lambda v: getattr(v, "name", "") if isinstance(v, Key) else v.name,
)
def test_each_default_written_by_its_module_reads_back_as_the_default(
    section: Section[Any], key: Key[Any]
) -> None:
    defaults = default_config(is_root=False, state_dir=STATE)
    default = getattr(getattr(defaults, section.name), key.name)
    written = flow_yaml(key.written(getattr(getattr(Config(), section.name), key.name)))
    loaded = load_config_text(
        f"{section.name}:\n  {key.name}: {written}\n", base_dir=STATE, defaults=defaults
    )
    assert getattr(getattr(loaded, section.name), key.name) == default


def test_every_policy_key_has_its_schema_and_its_default_in_default_yaml() -> None:
    schema = config_schema()["properties"]
    for name in POLICY_KEYS:
        assert schema[name]["description"], name
        assert f"\n{name}: " in default_yaml(), name


def test_default_yaml_is_written_from_the_section_modules() -> None:
    shipped = resources.files("filterdns.config").joinpath("default.yaml").read_text("utf-8")
    assert shipped == default_yaml(), (
        f"default.yaml is out of date; regenerate it with {REGENERATE}"
    )
