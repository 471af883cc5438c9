"""The JSON Schema for editors: in sync with the shipped copy and with the validator's keys."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from filterdns.config import (
    ALERT_KEYS,
    BAND_KEYS,
    BANDS,
    BLOCK_RESPONSES,
    CLIENT_KEYS,
    DEFAULT_CATEGORIES,
    PROFILE_KEYS,
    REPORT_LANGUAGES,
    SCHEDULE_KEYS,
    SECTIONS,
    STRATEGIES,
    TOP_LEVEL,
    YOUTUBE_LEVELS,
    load_config,
    load_config_text,
)
from filterdns.config.schema import config_schema
from filterdns.config.walker import compose
from filterdns.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "schema" / "filterdns.schema.json"
EXAMPLE = ROOT / "config.example.yaml"
REGENERATE = "python -m filterdns.config.schema > schema/filterdns.schema.json"

_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def _value(node: Node) -> Any:
    """A node as an editor's YAML 1.2 (core schema) reads it: `21:00` and `2026-12-24` are
    strings, only true/false are booleans."""
    if isinstance(node, MappingNode):
        return {_value(key): _value(value) for key, value in node.value}
    if isinstance(node, SequenceNode):
        return [_value(child) for child in node.value]
    assert isinstance(node, ScalarNode)
    text = node.value
    if node.style is not None:  # quoted or a block scalar
        return text
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def _document(text: str) -> Any:
    root, problem = compose(text)
    assert problem is None, problem
    return None if root is None else _value(root)


def _default_yaml() -> str:
    return resources.files("filterdns.config").joinpath("default.yaml").read_text(encoding="utf-8")


def _validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    schema = config_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    assert isinstance(ref, str) and ref.startswith("#/$defs/")
    resolved: dict[str, Any] = schema["$defs"][ref.removeprefix("#/$defs/")]
    return resolved


def _keys(schema: dict[str, Any], node: dict[str, Any]) -> tuple[str, ...]:
    node = _resolve(schema, node)
    assert node.get("additionalProperties") is False, node.get("description")
    return tuple(node["properties"])


# (1) the shipped copy


def test_shipped_schema_is_the_generated_one() -> None:
    generated = json.dumps(config_schema(), indent=2) + "\n"
    assert SHIPPED.read_text(encoding="utf-8") == generated, (
        f"{SHIPPED.relative_to(ROOT)} is out of date; regenerate it with `{REGENERATE}`"
    )


def test_module_prints_the_schema() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "filterdns.config.schema"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert json.loads(run.stdout) == config_schema()


def test_example_points_editors_at_the_schema() -> None:
    first = EXAMPLE.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=schema/filterdns.schema.json"
    load_config(EXAMPLE)  # the modeline is only a comment


# (2) valid documents


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(EXAMPLE.read_text(encoding="utf-8"), id="config.example.yaml"),
        pytest.param(_default_yaml(), id="default.yaml"),
        pytest.param("server:\n  timezone:\ncache:\n", id="empty sections"),
        pytest.param(
            "server: {listen: 127.0.0.1}\n"
            "upstreams: {servers: 'tls://[2620:fe::fe]:853#dns.quad9.net'}\n"
            "blocking: {response: null, custom_ips: fd00::2}\n"
            "profiles:\n"
            "  kid:\n"
            "    age_band: under-9\n"
            "    schedules:\n"
            "      - {days: daily, from: '19:00', to: '24:00', block: games}\n"
            "      - {days: [weekends], from: '09:00', to: '10:00', block: [all]}\n",
            id="single values for lists",
        ),
    ],
)
def test_valid_documents_match_the_schema(text: str) -> None:
    load_config_text(text)  # the validator accepts them
    validator = _validator()
    errors = [
        f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(_document(text))
    ]
    assert errors == []


# (3) the same keys as the validator


def test_every_key_the_validator_reads_is_in_the_schema() -> None:
    schema: dict[str, Any] = config_schema()
    top = schema["properties"]
    assert tuple(top) == TOP_LEVEL
    assert schema["additionalProperties"] is False
    for section, keys in SECTIONS.items():
        assert _keys(schema, top[section]) == keys, section
    assert _keys(schema, top["age_bands"]) == BANDS
    for band in BANDS:
        assert _keys(schema, top["age_bands"]["properties"][band]) == BAND_KEYS, band
    assert _keys(schema, top["profiles"]["additionalProperties"]) == PROFILE_KEYS
    assert _keys(schema, top["clients"]["items"]) == CLIENT_KEYS
    assert _keys(schema, top["alerts"]["items"]) == ALERT_KEYS
    assert _keys(schema, schema["$defs"]["schedule"]) == SCHEDULE_KEYS


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_choices_are_the_validators() -> None:
    schema: dict[str, Any] = config_schema()
    enums = {tuple(node["enum"]) for node in _walk(schema) if "enum" in node}
    assert enums == {
        STRATEGIES,
        (*BLOCK_RESPONSES, None),
        REPORT_LANGUAGES,
        YOUTUBE_LEVELS,
        BANDS,
    }
    category = schema["$defs"]["category"]
    assert category["examples"] == list(DEFAULT_CATEGORIES)
    for name in DEFAULT_CATEGORIES:
        assert name in category["description"]


# (4) invalid documents


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("server: {listen_on: 127.0.0.1}\n", "server"),
        ("serverz: {}\n", ""),
        ("upstreams: {strategy: random}\n", "upstreams.strategy"),
        ("upstreams: {servers: [dns.google]}\n", "upstreams.servers"),
        ("profiles: {kid: {age_band: 10-12}}\n", "profiles.kid.age_band"),
        ("profiles: {kid: {youtube: strict}}\n", "profiles.kid"),
        ("age_bands: {10-12: {youtube: strict}}\n", "age_bands"),
        ("age_bands: {9-12: {youtube: none}}\n", "age_bands.9-12.youtube"),
        ("", ""),  # no setting at all: a write cut short, never the defaults
        ("# only a comment\n", ""),
        ("{}\n", ""),
        ("cache: {prefetch: yes}\n", "cache.prefetch"),
        ("cache: {serve_stale: 1 day}\n", "cache.serve_stale"),
        ("cache: {max_entries: -1}\n", "cache.max_entries"),
        ("report: {lang: fr}\n", "report.lang"),
        ("clients: [{name: a, profile: p}]\n", "clients.0"),
        ("clients: [{name: a, profile: p, ip: 10.0.0.1, mac: aabbccddeeff}]\n", "clients.0"),
        ("alerts: [{categories: [adult]}]\n", "alerts.0"),
        (
            "profiles: {kid: {age_band: adult, schedules: [{days: daily, from: '1:00', "
            "to: '2:00', block: all, when: now}]}}\n",
            "profiles.kid.schedules",
        ),
        ("categories: {Bad Name: [shipped]}\n", "categories"),
    ],
)
def test_invalid_documents_are_rejected(text: str, where: str) -> None:
    with pytest.raises(ConfigError):  # as the validator does
        load_config_text(text)
    validator = _validator()
    errors = list(validator.iter_errors(_document(text)))
    assert errors, text
    paths = {".".join(map(str, error.absolute_path)) for error in errors}
    assert any(path.startswith(where) for path in paths), paths
