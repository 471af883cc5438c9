"""`clients:` the devices (an ip or a mac) and networks (a cidr) named in a file, each with the
profile it gets. Addresses are read once, in the canonical form the client directory matches
them in; no name, ip, cidr or mac may be given twice."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from filterdns.config.fragments import (
    IP_PATTERN,
    MAC_PATTERN,
    NETWORK_PATTERN,
    Schema,
    closed,
    string,
)
from filterdns.config.readers import ConfigReader
from filterdns.config.values import (
    IPAddress,
    IPNetwork,
    parse_client_ip,
    parse_client_network,
    parse_mac,
)
from filterdns.config.walker import Node, is_mapping, is_null, join, kind, line_of, show

CLIENT_KEYS = ("name", "ip", "cidr", "mac", "profile")
CLIENT_EXAMPLE = "{name: tablet, ip: 192.168.1.23, profile: minh}"
CLIENT_HINTS = {
    "name": "a name for the device or network",
    "ip": "an IP address like 192.168.1.23",
    "cidr": "a network like 10.6.1.0/24",
    "mac": "a MAC address like aa:bb:cc:dd:ee:ff",
    "profile": "the profile this client gets",
}
_ADDRESS_KEYS = ("ip", "cidr", "mac")


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """One `clients:` entry: a device (ip or mac) or a network (cidr) mapped to a profile.

    Exactly one of `ip`, `cidr` and `mac` is set, in the canonical form the client directory
    matches: no scope id, an IPv4-mapped address or range as IPv4, a network's host bits
    cleared, a MAC in lower case with colons.
    """

    name: str
    profile: str
    ip: IPAddress | None = None
    cidr: IPNetwork | None = None
    mac: str | None = None  # aa:bb:cc:dd:ee:ff


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text.strip())


_PARSE: dict[str, Callable[[str], object]] = {
    "name": str.strip,
    "ip": parse_client_ip,
    "cidr": parse_client_network,
    "mac": parse_mac,
    "profile": _nfc,
}


def read_clients(
    r: ConfigReader, node: Node, path: str, profiles: Sequence[str]
) -> tuple[ClientConfig, ...]:
    """The `clients:` list; every client names a profile and exactly one of ip, cidr, mac."""
    found: list[ClientConfig] = []
    seen: dict[tuple[str, object], str] = {}  # (key, value) -> where it was first given
    for child, child_path in r.items(node, path, "clients") or []:
        if is_null(child) or not is_mapping(child):
            message = f"expected a client like {CLIENT_EXAMPLE}, not {kind(child)}"
            r.problem(child, child_path, message)
            continue
        before = len(r.problems)
        keys = r.section(child, child_path, CLIENT_KEYS)
        values = _values(r, keys, child_path, seen)
        _check(r, child, keys, child_path, values, profiles=profiles)
        if len(r.problems) == before:
            found.append(_client(values))
    return tuple(found)


def _client(values: Mapping[str, object]) -> ClientConfig:
    """The client of values read without a problem (so of the types `_PARSE` gives)."""
    return ClientConfig(
        cast(str, values["name"]),
        cast(str, values["profile"]),
        ip=cast(IPAddress | None, values.get("ip")),
        cidr=cast(IPNetwork | None, values.get("cidr")),
        mac=cast(str | None, values.get("mac")),
    )


def _values(
    r: ConfigReader, keys: Mapping[str, Node], path: str, seen: dict[tuple[str, object], str]
) -> dict[str, object]:
    """The values given, each read once; a name or an address given before is a problem."""
    values: dict[str, object] = {}
    for key, parse in _PARSE.items():
        node = keys.get(key)
        if node is None:
            continue
        key_path = join(path, key)
        value = r.one(node, key_path, CLIENT_HINTS[key], parse)
        if value is None:
            continue
        values[key] = value
        if key == "profile":
            continue
        first = seen.get((key, value))
        if first is not None:
            r.problem(node, key_path, f"{show(str(value))} is already the {key} of {first}")
        else:
            seen[(key, value)] = f"{path} on line {line_of(node)}"
    return values


def _check(
    r: ConfigReader,
    node: Node,
    keys: Mapping[str, Node],
    path: str,
    values: Mapping[str, object],
    *,
    profiles: Sequence[str],
) -> None:
    """A name, a profile that exists, and exactly one address."""
    for key in ("name", "profile"):
        if key not in keys:
            r.problem(node, path, f"needs {key}: {CLIENT_HINTS[key]}")
    given = [key for key in _ADDRESS_KEYS if key in keys]
    if not given:
        r.problem(node, path, "needs one of ip, cidr or mac")
    elif len(given) > 1:
        message = (
            f"has {' and '.join(given)}; give exactly one of ip, cidr or mac "
            "(a device with several addresses gets one entry each)"
        )
        r.problem(node, path, message)
    profile = values.get("profile")
    if isinstance(profile, str) and profile not in profiles:
        message = f"{show(profile)} is not a profile; profiles: " + ", ".join(profiles)
        r.problem(keys["profile"], join(path, "profile"), message)


def client_definition() -> Schema:
    """The shared `$defs/client`: one device or network and its profile."""
    properties: dict[str, Schema] = {
        "name": string("A name for the device or network", minLength=1),
        "ip": string("One address, e.g. 192.168.1.23", IP_PATTERN),
        "cidr": string("A network, e.g. 10.6.1.0/24", NETWORK_PATTERN),
        "mac": string("A MAC address, e.g. aa:bb:cc:dd:ee:ff", MAC_PATTERN),
        "profile": string("The profile this client gets", minLength=1),
    }
    schema = closed(
        "A device (ip or mac) or network (cidr) and its profile", properties, CLIENT_KEYS
    )
    schema["required"] = ["name", "profile"]
    schema["oneOf"] = [{"required": [key]} for key in _ADDRESS_KEYS]
    return schema


def clients_schema() -> Schema:
    """The schema of `clients:`."""
    return {
        "description": "Devices and networks, each with a name, a profile and exactly one "
        "of ip, cidr or mac",
        "type": ["array", "null"],
        "items": {"$ref": "#/$defs/client"},
        "default": [],
    }
