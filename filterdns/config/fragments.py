"""Building blocks of the JSON Schema (draft 2020-12) the section modules describe their keys with.

Each section module writes the schema of its own keys with these (`string`, `duration`, ...);
`config.schema` assembles the whole document from them. The patterns are loose on purpose, so
that every value the validator accepts matches (the validator says what is wrong with the rest);
like the validator, a single value may stand for a list of one, and an empty value for an
empty list or mapping.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

Schema = dict[str, object]

DURATION_PATTERN = r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d|w)?\s*$"
ADDRESS = r"[0-9A-Fa-f:.]+(%[^\s\]/]+)?"
LISTEN_PATTERN = rf"^\s*(\[{ADDRESS}\](:\d+)?|{ADDRESS})\s*$"
IP_PATTERN = rf"^\s*{ADDRESS}\s*$"
NETWORK_PATTERN = rf"^\s*{ADDRESS}(/\d{{1,3}})?\s*$"
MAC_PATTERN = r"^\s*[0-9A-Fa-f]{2}([:.-]?[0-9A-Fa-f]{2}){5}\s*$"
CATEGORY_PATTERN = r"^\s*[a-z0-9][a-z0-9_-]{0,39}\s*$"
CATEGORY_KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"
NAME_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# Letters of any script, digits, '-', '_', '.' (ECMA regexes without the u flag know no \p{L}:
# every other printable ASCII character is left out instead).
NAME_PATTERN = r"^\s*[^\s!-/:-@\[-`{-~][^\s!-,/:-@\[-^`{-~]{0,63}\s*$"
CLOCK_PATTERN = r"^\s*\d{1,2}:\d{2}\s*$"
DAY_PATTERN = r"^\s*[A-Za-z]+(\s*-\s*[A-Za-z]+)?\s*$"
DATE_PATTERN = r"^\s*\d{4}-\d{2}-\d{2}(\s*\.\.\s*\d{4}-\d{2}-\d{2})?\s*$"
URL_PATTERN = r"^\s*[Hh][Tt][Tt][Pp][Ss]?://[^/\s]+"
PERCENT_PATTERN = r"^\s*\d+(\.\d+)?\s*%?\s*$"


def ref(name: str) -> Schema:
    """A reference to the shared definition `name` (under `$defs`)."""
    return {"$ref": f"#/$defs/{name}"}


def list_of(item: Schema, description: str | None = None) -> Schema:
    """A list of `item`; as in the validator, one value is a list of one and none is empty."""
    schema: Schema = {"anyOf": [{"type": "array", "items": item}, item, {"type": "null"}]}
    if description:
        schema = {"description": description, **schema}
    return schema


def mapping_of(
    description: str, values: Schema, names: Schema | None = None, **extra: object
) -> Schema:
    """An object of names of the user's choosing (a null value is an empty one)."""
    schema: Schema = {"description": description, "type": ["object", "null"]}
    if names is not None:
        schema["propertyNames"] = names
    schema["additionalProperties"] = values
    schema.update(extra)
    return schema


def closed(description: str, properties: Mapping[str, Schema], keys: Sequence[str]) -> Schema:
    """An object with exactly the keys `keys` (in that order) and no others.

    A key the validator reads without a schema here, or a schema of a key it does not read,
    raises KeyError: the two cannot drift apart.
    """
    missing = [key for key in keys if key not in properties]
    extra = [key for key in properties if key not in keys]
    if missing or extra:
        raise KeyError(f"schema of {description!r}: missing {missing}, not read {extra}")
    return {
        "description": description,
        "type": "object",
        "properties": {key: properties[key] for key in keys},
        "additionalProperties": False,
    }


def string(description: str, pattern: str | None = None, **extra: object) -> Schema:
    """A string, optionally matching `pattern`."""
    schema: Schema = {"description": description, "type": "string"}
    if pattern is not None:
        schema["pattern"] = pattern
    schema.update(extra)
    return schema


def enum(description: str, choices: Iterable[object]) -> Schema:
    """One of `choices`."""
    return {"description": description, "enum": list(choices)}


def integer(description: str, low: int, high: int) -> Schema:
    """A whole number from `low` to `high`."""
    return {"description": description, "type": "integer", "minimum": low, "maximum": high}


def percent(description: str) -> Schema:
    """0 to 100: a number, or a string like "90%"."""
    return {
        "description": description,
        "oneOf": [
            {"type": "number", "minimum": 0, "maximum": 100},
            {"type": "string", "pattern": PERCENT_PATTERN},
        ],
    }


def boolean(description: str) -> Schema:
    """true or false."""
    return {"description": description, "type": "boolean"}


def duration(description: str, *, positive: bool = False) -> Schema:
    """Seconds, or a number with a unit: 500ms, 10s, 5m, 24h, 1d, 2w."""
    number: Schema = {"type": "number", "minimum": 0}
    if positive:
        number = {"type": "number", "exclusiveMinimum": 0}
    return {
        "description": description,
        "oneOf": [number, {"type": "string", "pattern": DURATION_PATTERN}],
    }


def extend(schema: Schema, **extra: object) -> Schema:
    """`schema` with more keywords (a description beside a `$ref`, a default)."""
    return {**schema, **extra}


def to_json(value: object) -> object:
    """A default value as it may be written in the file (durations in seconds).

    Values that print themselves (addresses, upstream servers, networks, enums) are written as
    they print; plain records (`RateLimit`) as mappings of their fields.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, Path | ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(value)
    if isinstance(value, tuple | list):
        return [to_json(item) for item in value]
    if dataclasses.is_dataclass(value) and type(value).__str__ is object.__str__:
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)
