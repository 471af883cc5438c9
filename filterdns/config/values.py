"""The value types written in a configuration file, read from text once: addresses, networks,
MAC addresses, domain names and the names people give profiles and calendars.

Each `parse_*` takes the text of one value and returns it typed and canonical, or raises
ValueError with a message for the user (the section readers add the YAML path and line). No
YAML here: these are shared by every section and by the command line.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass

from filterdns.config.walker import show
from filterdns.dns.addresses import canonical_ip
from filterdns.dns.names import normalize_name
from filterdns.regexes import compile_rule, is_regex

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_LISTEN_PORT = 53
_V4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_MAC = re.compile(r"[0-9a-f]{12}")
# Letters of any script (Bình, Лена), digits, '-', '_' and '.': a name is typed on command lines
# and stored in the log; spaces and the rest belong in `display_name`.
_NAME = re.compile(r"[^\W_][\w.-]{0,63}")
NAME_RULE = "letters, digits, '-', '_' and '.', at most 64, starting with a letter or digit"
DISPLAY_HINT = '; for spaces and the like add display_name, e.g. bo-me: {display_name: "bố mẹ"}'


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """One address to serve on over UDP and TCP; port 0 asks the system for a free port."""

    host: str  # canonical address text, as sockets take it
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def is_domain_name(name: str) -> bool:
    """True for a normalised name of 1-63 character labels (letters, digits, '-', '_')."""
    return 0 < len(name) <= 253 and all(_LABEL.fullmatch(label) for label in name.split("."))


def is_name(text: str) -> bool:
    """True when `text` (NFC-normalised) is a valid profile or calendar name (NAME_RULE)."""
    return _NAME.fullmatch(unicodedata.normalize("NFC", text)) is not None


def split_host_port(text: str) -> tuple[str, str | None]:
    """`[v6]:port`, `[v6]`, `v4:port` or a bare host (IPv6 needs brackets to take a port)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f'{show(text)} opens "[" without closing it')
        host, rest = text[1:end], text[end + 1 :]
        if not rest:
            return host, None
        if rest.startswith(":"):
            return host, rest[1:]
        raise ValueError(f'{show(text)}: expected ":port" after "]"')
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, port
    return text, None


def parse_port(text: str, low: int) -> int:
    """A port number from `low` to 65535."""
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{show(text)} is not a port number")
    port = int(text) if len(text) <= 6 else 65536
    if not low <= port <= 65535:
        raise ValueError(f"port {port if port <= 65535 else text} is not between {low} and 65535")
    return port


def ip_text(host: str) -> str | None:
    """The canonical text of an IP address literal, or None."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def parse_listen(text: str) -> ListenAddress:
    """`127.0.0.1:5353`, `[::1]:5353` or a bare address (port 53); ValueError says what is wrong."""
    host, port_text = split_host_port(text.strip())
    ip = ip_text(host)
    if ip is None:
        raise ValueError(
            f"{show(host)} is not an IP address; listen on an address such as 0.0.0.0, ::, "
            "127.0.0.1 or ::1"
        )
    port = DEFAULT_LISTEN_PORT if port_text is None else parse_port(port_text, 0)
    return ListenAddress(ip, port)


def parse_network(text: str) -> IPNetwork:
    """An address (`::1`, a /32 or /128) or a network (`192.168.0.0/16`; host bits ignored)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(
            f"{show(text)} is not an IP address or network like 192.168.0.0/16 or fe80::/10"
        ) from None


def parse_address(text: str) -> IPAddress:
    """One IPv4 or IPv6 address; ValueError otherwise."""
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        raise ValueError(f"{show(text)} is not an IP address like 192.168.1.2 or fd00::2") from None


def parse_client_ip(text: str) -> IPAddress:
    """The address of a client rule (as `parse_address` takes it), canonical as the client
    directory matches it: scope id dropped, IPv4-mapped read as IPv4."""
    return canonical_ip(str(parse_address(text)))


def parse_client_network(text: str) -> IPNetwork:
    """The network of a client rule: host bits cleared, an IPv4-mapped range read as IPv4."""
    network = parse_network(text)
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_V4_MAPPED):
        v4 = network.network_address.ipv4_mapped
        assert v4 is not None
        return ipaddress.IPv4Network((v4, network.prefixlen - 96))
    return network


def parse_domain(text: str) -> str:
    """A domain of a block or allow list, normalised; a leading `*.` is dropped (a domain
    covers its subdomains anyway). ValueError when it is not a domain name."""
    name = normalize_name(text)
    if name.startswith("*."):
        name = name[2:]
    if not is_domain_name(name):
        raise ValueError(f"{show(text)} is not a domain name like example.com")
    return name


def parse_entry(text: str) -> str:
    """A profile block / allow entry: a domain (see parse_domain), or `/pattern/`, a regex
    searched in the name (kept as written; refused when `regexes.compile_rule` refuses it)."""
    stripped = text.strip()
    if is_regex(stripped):
        compile_rule(stripped[1:-1])
        return stripped
    return parse_domain(text)


def parse_mac(text: str) -> str:
    """`AA-BB-CC-DD-EE-FF`, `aa:bb:cc:dd:ee:ff` or `aabb.ccdd.eeff` -> aa:bb:cc:dd:ee:ff."""
    digits = text.strip().lower()
    for separator in ":-.":
        digits = digits.replace(separator, "")
    groups = re.split(r"[:.-]", text.strip())
    if not _MAC.fullmatch(digits) or len({len(group) for group in groups}) != 1:
        raise ValueError(f"{show(text)} is not a MAC address like aa:bb:cc:dd:ee:ff")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))
