"""`blocking:` how blocked names are answered, and the protections around them (bypass
protection, CNAME inspection, rebinding protection)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from filterdns.config.fragments import IP_PATTERN, enum, list_of, ref, string
from filterdns.config.readers import ConfigReader, Key, Section, boolean_key, choice, ttl_key
from filterdns.config.values import IPAddress
from filterdns.config.walker import Node, join, scalar_text


class BlockResponse(StrEnum):
    """How a blocked name is answered."""

    NXDOMAIN = "nxdomain"  # "no such name", with an SOA so clients cache it briefly
    NULL = "null"  # 0.0.0.0 for A, :: for AAAA, no data for other types
    REFUSED = "refused"
    CUSTOM = "custom"  # the addresses of `custom_ips` (a block page)


BLOCK_RESPONSES = tuple(BlockResponse)


@dataclass(frozen=True, slots=True)
class BlockingConfig:
    """`blocking:` how blocked names are answered."""

    response: BlockResponse = BlockResponse.NXDOMAIN
    custom_ips: tuple[IPAddress, ...] = ()  # IPv4/IPv6 of a block page, required for `custom`
    ttl: int = 10  # seconds (a duration in YAML)
    bypass_protection: bool = True
    cname_inspection: bool = True  # CNAME/DNAME/SVCB targets are judged like the name asked
    rebinding_protection: bool = True  # no private addresses in answers to public names
    rebinding_allow: tuple[str, ...] = ()  # names whose answers may hold private addresses
    # Names no list decides are scored by the shipped name model (adult-suspect,
    # gambling-suspect); false: only the lists decide.
    name_model: bool = True


_read_response = choice(BlockResponse)


def _response(r: ConfigReader, node: Node, path: str) -> BlockResponse | None:
    # `response: null` is the mode, not YAML's null.
    if scalar_text(node) in ("null", "Null", "NULL"):
        return BlockResponse.NULL
    return _read_response(r, node, path)


def _check(r: ConfigReader, found: Mapping[str, Node], blocking: BlockingConfig) -> BlockingConfig:
    """`custom` needs the addresses to answer with."""
    key = "response" if "response" in found else "custom_ips"
    where = found.get(key)
    if blocking.response == BlockResponse.CUSTOM and not blocking.custom_ips and where is not None:
        message = (
            "custom needs blocking.custom_ips: the addresses of a block page, "
            "e.g. custom_ips: [192.168.1.2]"
        )
        r.problem(where, join("blocking", key), message)
    return blocking


SECTION = Section(
    "blocking",
    BlockingConfig,
    "How blocked names are answered",
    (
        Key("response", _response, enum(
            "How blocked names are answered: nxdomain, null (0.0.0.0 / ::), refused or custom "
            "(custom_ips)",
            [*BLOCK_RESPONSES, None],
        )),
        Key("custom_ips", ConfigReader.addresses, list_of(
            string("An IP address", IP_PATTERN), "The addresses answered with custom"
        )),
        ttl_key("ttl", "TTL of a blocked answer"),
        boolean_key("bypass_protection", "Stop the usual ways around the filter (DoH canary, "
                    "Private Relay, bypass)"),
        boolean_key("cname_inspection", "Judge every CNAME/DNAME target and SVCB/HTTPS target "
                    "name of an answer like the name asked"),
        boolean_key("rebinding_protection", "Answers to public names lose private, loopback, "
                    "link-local, CGNAT and unique-local addresses (NODATA)"),
        Key("rebinding_allow", ConfigReader.domains, list_of(
            ref("domain"), "Names (and their subdomains) whose answers may hold private addresses"
        )),
        boolean_key("name_model", "Score names no list decides with the shipped name model: "
                    "adult-suspect, gambling-suspect"),
    ),
    _check,
)  # fmt: skip
