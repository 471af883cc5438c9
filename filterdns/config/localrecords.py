"""`local_records:` names the proxy answers itself (a printer, the school intranet, a NAS).

Each name maps to one address, a list of addresses (A or AAAA by family), or a mapping with
`a`, `aaaa`, `cname` and `ttl`. Names are normalised (lower case, no trailing dot) and must be
valid DNS names; a name is either a CNAME or has addresses, never both; a CNAME may not lead
back to itself (directly or through other local names). The TTL is per record (`ttl:`,
default 300 s): one record may change soon (a test server) while the others stay put.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from filterdns.config.fragments import IP_PATTERN, Schema, closed, list_of, mapping_of, ref, string
from filterdns.config.readers import ConfigReader
from filterdns.config.values import IPAddress, is_domain_name, parse_address
from filterdns.config.walker import Node, is_mapping, join, line_of, show
from filterdns.dns.names import normalize_name
from filterdns.errors import Problem

LOCAL_RECORD_KEYS = ("a", "aaaa", "cname", "ttl")
DEFAULT_LOCAL_TTL = 300  # seconds: short enough that a moved printer is found again soon
LOCAL_EXAMPLE = "10.6.0.5, [192.168.1.10, fd00::10] or {cname: web.school.lan}"


@dataclass(frozen=True, slots=True)
class LocalRecord:
    """One `local_records:` entry: a name with its addresses (IPv4 then IPv6) or its CNAME."""

    name: str  # normalised
    addresses: tuple[IPAddress, ...] = ()
    cname: str | None = None  # normalised
    ttl: int = DEFAULT_LOCAL_TTL
    path: str = ""  # where the file gives it, for messages
    line: int | None = None


def read_local_records(r: ConfigReader, node: Node, path: str) -> tuple[LocalRecord, ...]:
    """The `local_records:` mapping, every problem reported with its path and line."""
    found: dict[str, LocalRecord] = {}
    for key, key_node, value in r.pairs(node, path, "a mapping of names to addresses"):
        here = join(path, key)
        name = normalize_name(key)
        if not is_domain_name(name) or name.isdigit():
            r.problem(key_node, here, f"{show(key)} is not a DNS name like printer.school.lan")
            continue
        if name in found:
            first = found[name]
            r.problem(key_node, here, f"{show(key)} is already given as {first.path}")
            continue
        record = _record(r, value, here, name)
        if record is not None:
            found[name] = record
    _check_loops(r, found)
    return tuple(found.values())


def _record(r: ConfigReader, node: Node, path: str, name: str) -> LocalRecord | None:
    """One entry: a plain address, a list of them, or the mapping form."""
    line = line_of(node)
    if not is_mapping(node):
        given = _addresses(r, node, path, None)
        return None if given is None else LocalRecord(name, given, path=path, line=line)
    before = len(r.problems)
    keys = r.section(node, path, LOCAL_RECORD_KEYS)
    addresses: list[IPAddress] = []
    for key, version in (("a", 4), ("aaaa", 6)):
        if key in keys:
            addresses += _addresses(r, keys[key], join(path, key), version) or ()
    cname = None
    if "cname" in keys:
        cname = _cname(r, keys["cname"], join(path, "cname"), name)
        if "a" in keys or "aaaa" in keys:
            r.problem(node, path, "has both cname and addresses; a CNAME name has no others")
    elif "a" not in keys and "aaaa" not in keys and len(r.problems) == before:
        r.problem(node, path, "needs a, aaaa or cname")
    ttl = DEFAULT_LOCAL_TTL
    if "ttl" in keys:
        seconds = r.ttl(keys["ttl"], join(path, "ttl"))
        ttl = ttl if seconds is None else seconds
    if len(r.problems) != before:
        return None
    return LocalRecord(name, tuple(addresses), cname, ttl, path, line)


def _addresses(
    r: ConfigReader, node: Node, path: str, version: int | None
) -> tuple[IPAddress, ...] | None:
    """Addresses of one family (`version`) or of both, IPv4 first; None after a problem."""
    items = r.items(node, path, "addresses")
    if items is None:
        return None
    found: list[IPAddress] = []
    for child, child_path in items:
        text = r.scalar(child, child_path, "an IP address")
        if text is None:
            return None
        try:
            address = parse_address(text)
        except ValueError as exc:
            r.problem(child, child_path, str(exc))
            return None
        if version is not None and address.version != version:
            family = "an IPv4" if version == 4 else "an IPv6"
            r.problem(child, child_path, f"{show(text)} is not {family} address")
            return None
        if address not in found:
            found.append(address)
    if not found:
        r.problem(node, path, "needs at least one address")
        return None
    return tuple(sorted(found, key=lambda a: a.version))


def _cname(r: ConfigReader, node: Node, path: str, name: str) -> str | None:
    text = r.text(node, path, "a name like web.school.lan")
    if text is None:
        return None
    target = normalize_name(text)
    if not is_domain_name(target):
        r.problem(node, path, f"{show(text)} is not a DNS name like web.school.lan")
        return None
    if target == name:
        r.problem(node, path, f"{show(text)} is the name itself; a CNAME must lead elsewhere")
        return None
    return target


def _check_loops(r: ConfigReader, records: Mapping[str, LocalRecord]) -> None:
    """A CNAME chain of local names that comes back to where it started is a problem."""
    for record in records.values():
        seen = [record.name]
        target = record.cname
        while target is not None and target in records:
            if target == record.name:
                chain = " -> ".join((*seen, target))
                r.problems.append(
                    Problem(record.path, f"the CNAME chain {chain} is a loop", record.line)
                )
                break
            if target in seen:
                break  # a loop that does not pass through this name: reported for its members
            seen.append(target)
            target = records[target].cname


def local_records_schema() -> Schema:
    """The schema of `local_records:`."""
    address = string("An IPv4 or IPv6 address", IP_PATTERN)
    record = closed(
        "Addresses (a: IPv4, aaaa: IPv6) or a CNAME, and a TTL (default 300s)",
        {
            "a": list_of(address, "IPv4 addresses"),
            "aaaa": list_of(address, "IPv6 addresses"),
            "cname": string("Another name, e.g. web.school.lan", minLength=1),
            "ttl": ref("duration"),
        },
        LOCAL_RECORD_KEYS,
    )
    value: Schema = {"anyOf": [address, {"type": "array", "items": address}, record]}
    return mapping_of(
        "Names answered by the proxy itself, for every profile, before any blocking: an address, "
        "a list of addresses, or {a, aaaa, cname, ttl}; PTR answers follow from the addresses",
        value,
        default={},
    )
