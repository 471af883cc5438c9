"""A JSON Schema (draft 2020-12) of the configuration, for editors with YAML language support.

`config_schema()` assembles it from the section modules: each section's keys with their
schemas (`Section.keys`), the schema each policy key's module writes, the shared definitions
(`$defs`) and the defaults of the section dataclasses. A key the validator reads without a
schema, or a schema of a key it does not read, raises KeyError (`fragments.closed`), so the two
cannot drift apart (and tests/unit/test_schemagen.py keeps the shipped copy in step).

The schema is deliberately a little looser than the validator (which also checks addresses,
time zones, references between sections and so on): it never rejects a valid file.

`python -m filterdns.config.schema > schema/filterdns.schema.json` writes the shipped copy.
"""

from __future__ import annotations

import json
from typing import Any

from filterdns.config.alerts import alert_definition, alerts_schema
from filterdns.config.bands import age_bands_schema
from filterdns.config.clients import client_definition, clients_schema
from filterdns.config.fragments import Schema, closed, duration, string, to_json
from filterdns.config.lists import categories_schema, category_definitions
from filterdns.config.localrecords import local_records_schema
from filterdns.config.model import FIXED_SECTIONS, TOP_LEVEL, Config
from filterdns.config.profiles import default_profile_schema, profile_definition, profiles_schema
from filterdns.config.readers import Section
from filterdns.config.schedules import calendars_schema, schedule_definitions
from filterdns.config.upstreams import upstream_definition

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def config_schema() -> Schema:
    """The JSON Schema of a configuration file."""
    defaults = Config()
    properties = {s.name: section_schema(s, getattr(defaults, s.name)) for s in FIXED_SECTIONS}
    properties.update(
        {
            "categories": categories_schema(defaults.categories),
            "age_bands": age_bands_schema(),
            "profiles": profiles_schema(defaults.profiles),
            "calendars": calendars_schema(),
            "clients": clients_schema(),
            "default_profile": default_profile_schema(defaults.default_profile),
            "alerts": alerts_schema(),
            "local_records": local_records_schema(),
        }
    )
    root = closed("filterdns configuration", properties, TOP_LEVEL)
    # A file with no setting at all (empty, only comments, `{}`) is refused by the validator:
    # it is far more often a write cut short than a wish for the defaults.
    root["minProperties"] = 1
    return {"$schema": DRAFT, "title": "filterdns configuration", **root, "$defs": _defs()}


def section_schema(section: Section[Any], defaults: object) -> Schema:
    """A section with fixed keys: each key's schema with its default from `defaults`."""
    properties: dict[str, Schema] = {}
    for key in section.keys:
        schema = dict(key.schema)
        default = getattr(defaults, key.name)
        if "additionalProperties" in schema and isinstance(default, tuple):  # (name, value) pairs
            schema["default"] = {name: to_json(value) for name, value in default}
        elif not key.state_relative:  # those depend on the state directory
            schema["default"] = to_json(default)
        properties[key.name] = schema
    schema = closed(section.description, properties, section.names)
    schema["type"] = ["object", "null"]
    return schema


def _defs() -> dict[str, Schema]:
    """The definitions the sections refer to (`$ref`), each written by the module it serves."""
    return {
        "duration": duration("Seconds, or a number with a unit: 500ms, 10s, 5m, 24h, 1d, 2w"),
        **category_definitions(),
        "domain": string("A domain like example.com; it covers its subdomains", minLength=1),
        **schedule_definitions(),
        "upstream": upstream_definition(),
        "profile": profile_definition(),
        "client": client_definition(),
        "alert": alert_definition(),
    }


if __name__ == "__main__":
    print(json.dumps(config_schema(), indent=2))
