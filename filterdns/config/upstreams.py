"""`upstreams:` the resolvers the proxy forwards to, how it chooses among them, its caps on
queries in flight, and the conditional routes of local suffixes to their own servers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from filterdns.config.fragments import ADDRESS, Schema, list_of, mapping_of, ref, string
from filterdns.config.readers import (
    ConfigReader,
    Key,
    Section,
    boolean_key,
    choice_key,
    duration_key,
    whole_key,
)
from filterdns.config.values import ip_text, is_domain_name, parse_port, split_host_port
from filterdns.config.walker import Node, join, line_of, show
from filterdns.dns.names import normalize_name


class Strategy(StrEnum):
    """How the servers are chosen."""

    FAILOVER = "failover"  # in the order listed; the next when one is slow or failing
    ROUND_ROBIN = "round_robin"  # spread over all of them
    FASTEST = "fastest"  # prefer the one answering quickest


STRATEGIES = tuple(Strategy)
UPSTREAM_SCHEMES = ("udp", "tcp", "tls", "https")
DEFAULT_PORTS = {"udp": 53, "tcp": 53, "tls": 853, "https": 443}
MAX_OUTSTANDING = 65536  # ids on one pooled TCP connection to an upstream
HTTPS_FORMS = (
    "https://1.1.1.1/dns-query, https://1.1.1.1/dns-query#cloudflare-dns.com "
    "or https://dns.quad9.net/dns-query#9.9.9.9"
)
_URL_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*")
_SCHEMES = "|".join(
    "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in scheme)
    for scheme in UPSTREAM_SCHEMES
)
# With a scheme anything may follow (https:// takes a URL); without one, an address and port.
UPSTREAM_PATTERN = rf"^\s*(({_SCHEMES})://\S+|\[{ADDRESS}\](:\d+)?|{ADDRESS})\s*$"


@dataclass(frozen=True, slots=True)
class UpstreamServer:
    """One upstream resolver: `udp://9.9.9.9:53`, `tcp://...`, `tls://1.1.1.1#cloudflare-dns.com`,
    `https://9.9.9.9/dns-query#dns.quad9.net`.

    `host` is always the address to connect to; `sni` the name its certificate is checked against
    (tls, and https when given: then also the HTTP Host); `path` the DNS over HTTPS endpoint.
    """

    scheme: str
    host: str
    port: int
    sni: str | None = None
    path: str = "/dns-query"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        sni = f"#{self.sni}" if self.sni else ""
        if self.scheme == "https":
            port = "" if self.port == DEFAULT_PORTS["https"] else f":{self.port}"
            return f"https://{host}{port}{self.path}{sni}"
        prefix = "" if self.scheme == "udp" else f"{self.scheme}://"
        return f"{prefix}{host}:{self.port}{sni}"


QUAD9 = (UpstreamServer("udp", "9.9.9.9", 53), UpstreamServer("udp", "149.112.112.112", 53))


@dataclass(frozen=True, slots=True)
class UpstreamsConfig:
    """`upstreams:` the resolvers the proxy forwards to."""

    servers: tuple[UpstreamServer, ...] = QUAD9
    strategy: Strategy = Strategy.FAILOVER
    timeout: float = 2.0
    backoff: float = 30.0
    # Exchanges in flight at once (each UDP one holds a socket): with the TCP connections they
    # fit the usual limit of 1,024 open files (see systemd/filterdns.service).
    max_outstanding: int = 512
    max_outstanding_per_server: int = 256  # half: one dead server leaves room for the others
    conditional: tuple[tuple[str, tuple[UpstreamServer, ...]], ...] = ()
    trust_ad: bool = False  # the servers validate DNSSEC: pass their AD bit on (not conditional)


def parse_upstream(text: str) -> UpstreamServer:
    """`9.9.9.9`, `1.1.1.1:53`, `[2620:fe::fe]:53`, `tcp://8.8.8.8`, `tls://1.1.1.1#name`, and
    DNS over HTTPS in two forms (port 443 and path /dns-query unless given):

    - `https://1.1.1.1/dns-query`: connect to the address; its certificate must name the address.
      `https://1.1.1.1/dns-query#cloudflare-dns.com` checks the certificate against the name
      after '#' instead (also sent as SNI and HTTP Host).
    - `https://dns.quad9.net/dns-query#9.9.9.9`: the URL as the provider publishes it, with the
      address to connect to after '#'; the certificate is checked against the host name.

    Without a scheme the server is asked over UDP. Ports default to DEFAULT_PORTS. The host is
    always an address (the proxy must not depend on DNS to find its resolvers). Raises
    ValueError with a message for the user.
    """
    spec = text.strip()
    scheme = "udp"
    if "://" in spec:
        scheme, spec = spec.split("://", 1)
        scheme = scheme.lower()
        if scheme not in UPSTREAM_SCHEMES:
            raise ValueError(
                f"unknown scheme {show(scheme + '://')}; use udp://, tcp://, tls:// or https://"
            )
        if scheme == "https":
            return _https_upstream(spec)
    spec, has_name, sni = spec.partition("#")
    if has_name and scheme != "tls":
        raise ValueError(f"only tls:// and https:// take a server name after '#', not {scheme}://")
    host, port_text = split_host_port(spec)
    ip = ip_text(host)
    if ip is None:
        message = (
            f"upstream host must be an IP address, not {show(host)} "
            "(the proxy must not depend on DNS to find its resolvers)"
        )
        if scheme == "tls" and not has_name and is_domain_name(normalize_name(host)):
            message += f"; write tls://<its address>#{host}"
        raise ValueError(message)
    port = DEFAULT_PORTS[scheme] if port_text is None else parse_port(port_text, 1)
    if scheme != "tls":
        return UpstreamServer(scheme, ip, port)
    return UpstreamServer(scheme, ip, port, _tls_name(sni))


def _tls_name(sni: str) -> str:
    """The name after '#' of a tls:// server, which its certificate must carry."""
    if not sni.strip():
        raise ValueError(
            "tls:// needs the server name after '#' to verify its certificate, "
            "e.g. tls://1.1.1.1#cloudflare-dns.com"
        )
    name = normalize_name(sni)
    if not is_domain_name(name):
        raise ValueError(f"{show(sni)} is not a valid server name for the certificate")
    return name


def _https_upstream(spec: str) -> UpstreamServer:
    """The part of `https://...` after the scheme; see parse_upstream."""
    rest, _hash, after = spec.partition("#")
    after = after.strip()
    slash = rest.find("/")
    authority, path = (rest, "/dns-query") if slash < 0 else (rest[:slash], rest[slash:])
    if not _URL_PATH.fullmatch(path):
        raise ValueError(f"{show(path)} is not a URL path like /dns-query")
    host, port_text = split_host_port(authority)
    port = DEFAULT_PORTS["https"] if port_text is None else parse_port(port_text, 1)
    ip = ip_text(host)
    if ip is not None:  # https://1.1.1.1/dns-query[#name]
        if not after:
            return UpstreamServer("https", ip, port, None, path)
        name = normalize_name(after)
        if ip_text(after) is not None or not is_domain_name(name):
            raise ValueError(
                f"{show(after)} after '#' is not a server name for the certificate; write "
                f"{HTTPS_FORMS}"
            )
        return UpstreamServer("https", ip, port, name, path)
    name = normalize_name(host)
    if not is_domain_name(name):
        raise ValueError(f"{show(host)} is not an IP address or host name; write {HTTPS_FORMS}")
    bracketed = after.startswith("[") and after.endswith("]")
    address = ip_text(after[1:-1] if bracketed else after)
    if address is None:  # https://dns.quad9.net/dns-query#9.9.9.9
        raise ValueError(
            f"{show(after)} after '#' is not an IP address; the proxy must not depend on DNS "
            f"to find its resolvers, so write https://{host}{path}#<its address>"
            if after
            else f"upstream host must be an IP address, not {show(host)} (the proxy must not "
            f"depend on DNS to find its resolvers); write https://{host}{path}#<its address>"
        )
    return UpstreamServer("https", address, port, name, path)


def _servers(r: ConfigReader, node: Node, path: str) -> tuple[UpstreamServer, ...] | None:
    return r.parsed(node, path, "servers", parse_upstream, "needs at least one server")


Route = tuple[str, tuple[UpstreamServer, ...]]


def _conditional(r: ConfigReader, node: Node, path: str) -> tuple[Route, ...] | None:
    """`{home.arpa: 192.168.1.1, 168.192.in-addr.arpa: [...]}` in file order."""
    routes: list[Route] = []
    first_line: dict[str, int] = {}
    good = True
    expected = "a mapping of domain suffixes to servers, e.g. {home.arpa: 192.168.1.1}"
    for key, key_node, value in r.pairs(node, path, expected):
        key_path = join(path, key)
        suffix = normalize_name(key)
        message = None
        if suffix in ("", "."):
            message = "the root cannot be a conditional suffix; upstreams.servers answer it"
        elif not is_domain_name(suffix):
            message = f"{show(key)} is not a valid domain name"
        elif suffix in first_line:
            message = f"{show(key)} repeats the suffix on line {first_line[suffix]}"
        else:
            first_line[suffix] = line_of(key_node)
        if message is not None:
            r.problem(key_node, key_path, message)
            good = False
        servers = _servers(r, value, key_path)
        if servers is None:
            good = False
        elif good:
            routes.append((suffix, servers))
    return tuple(routes) if good else None


def _routes(routes: tuple[Route, ...]) -> dict[str, list[str]]:
    """The conditional routes as the file writes them: suffix -> servers."""
    return {suffix: [str(server) for server in servers] for suffix, servers in routes}


def _check(r: ConfigReader, found: Mapping[str, Node], up: UpstreamsConfig) -> UpstreamsConfig:
    """The per-server cap on queries in flight stays within the global one."""
    keys = ("max_outstanding_per_server", "max_outstanding")
    caps = (up.max_outstanding_per_server, up.max_outstanding)
    per_server = r.below(found, "upstreams", keys, caps, strict=False)
    return replace(up, max_outstanding_per_server=per_server)


def upstream_definition() -> Schema:
    """The shared `$defs/upstream`: one server as written in `servers` and `conditional`."""
    return string(
        "An upstream resolver by IP address; schemes: "
        + ", ".join(f"{scheme}://" for scheme in UPSTREAM_SCHEMES)
        + '. E.g. 9.9.9.9, udp://9.9.9.9:53, tcp://8.8.8.8, "[2620:fe::fe]:53", '
        "tls://1.1.1.1#cloudflare-dns.com",
        UPSTREAM_PATTERN,
    )


SECTION = Section(
    "upstreams",
    UpstreamsConfig,
    "The resolvers the proxy forwards to",
    (
        Key("servers", _servers, list_of(
            ref("upstream"), "The resolvers asked for every name not answered here"
        )),
        choice_key("strategy", Strategy,
                   "How servers are chosen: failover (in order), round_robin or fastest"),
        duration_key("timeout", "One deadline for a query across all servers", positive=True),
        duration_key("backoff", "Longest time a failing server is skipped (doubling)"),
        whole_key("max_outstanding", 1, MAX_OUTSTANDING,
                  "Queries in flight to the upstreams at once; past it, stale data or SERVFAIL "
                  "at once"),
        whole_key("max_outstanding_per_server", 1, MAX_OUTSTANDING,
                  "Queries in flight to one upstream at once; at most max_outstanding"),
        Key("conditional", _conditional, mapping_of(
            "Names under a domain suffix go to their own servers",
            list_of(ref("upstream")),
            examples=[{"home.arpa": "192.168.1.1"}],
        ), show=_routes),
        boolean_key("trust_ad", "The servers validate DNSSEC: pass their AD bit to clients "
                    "that set DO or AD"),
    ),
    _check,
)  # fmt: skip
