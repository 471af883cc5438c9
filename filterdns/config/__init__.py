"""The configuration: parsed once from YAML into frozen dataclasses, every problem reported.

`load_config(path)` / `load_config_text(text, source)` return a Config or raise ConfigError
listing every problem with its YAML path and line number. Unknown keys are rejected and wrong
choices name the valid ones. Components receive their own section (ServerConfig, ...), never
the whole Config. Missing keys take the embedded defaults (`default.yaml`, see `default_config`).
pyyaml is imported here and in `configschema` (the node walking) only.

The parental policy (`age_bands`, `profiles`, `calendars`, `clients`, `default_profile`,
`blocking`, `server.timezone`) is read here too, and checked across sections:
- `Config.age_bands` is the effective table: BAND_TABLE with the file's overrides applied per
  key (`schedules: []` removes a band's bedtime); ALWAYS_BLOCKED is in every band.
- Profiles defined in a file are added to the embedded `household` profile (the `13-15`
  categories, SafeSearch, no bedtime; a file's own `household` replaces it). Devices no client
  rule matches get `default_profile`, which is `household` unless the file names another one:
  without a file, or before a child is named, nothing is served unfiltered.
- A schedule rule has exactly one kind of action: `block: all` (optionally with `allow:`
  domains), or category changes: `block: [..]` and/or `allow_categories: [..]`, which may be
  combined in one rule but may not name the same category. ALWAYS_BLOCKED is never allowed.
- Categories named anywhere must be shipped ones or names under `categories:`; age bands,
  profiles and calendars referenced must exist. Each such problem names the valid choices.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import os
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date
from importlib import resources
from pathlib import Path
from typing import TypeVar

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from filterdns.config.walker import Walker, compose, is_null, join, kind, line_of, show
from filterdns.dns.names import normalize_name
from filterdns.errors import ConfigError, Problem
from filterdns.policy.schedule import Calendar, Window, parse_calendar, parse_clock, parse_days
from filterdns.policy.timezones import parse_timezone
from filterdns.querylog.translations import languages

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

STRATEGIES = ("failover", "round_robin", "fastest")
UPSTREAM_SCHEMES = ("udp", "tcp", "tls", "https")
DEFAULT_PORTS = {"udp": 53, "tcp": 53, "tls": 853, "https": 443}
BANDS = ("under-9", "9-12", "13-15", "16-17", "adult")
ALWAYS_BLOCKED = ("malware", "phishing", "cryptojacking", "stalkerware")
YOUTUBE_LEVELS = ("strict", "moderate", "off")
BLOCK_RESPONSES = ("nxdomain", "null", "refused", "custom")


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """One address to serve on over UDP and TCP; port 0 asks the system for a free port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


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


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`server.rate_limit`: queries a second each client address may ask, and at once."""

    per_client_qps: int = 50
    burst: int = 200


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """`server:` where and to whom the proxy answers."""

    listen: tuple[ListenAddress, ...]
    allow_clients: tuple[IPNetwork, ...]
    tcp_idle_timeout: float = 10.0
    max_tcp_connections: int = 256
    # Below max_tcp_connections, so one address never holds every TCP connection.
    max_tcp_connections_per_client: int = 16
    shutdown_grace: float = 5.0
    timezone: str | None = None  # IANA zone of schedules; None: the system's (system_timezone)
    user: str | None = None  # started as root without systemd: run as this user after binding
    metrics: ListenAddress | None = None  # where Prometheus scrapes /metrics; None: off
    rate_limit: RateLimit | None = RateLimit()  # None: no limit


@dataclass(frozen=True, slots=True)
class UpstreamsConfig:
    """`upstreams:` the resolvers the proxy forwards to."""

    servers: tuple[UpstreamServer, ...]
    strategy: str = "failover"
    timeout: float = 2.0
    backoff: float = 30.0
    # Exchanges in flight at once (each UDP one holds a socket): with the TCP connections they
    # fit the usual limit of 1,024 open files (see systemd/filterdns.service).
    max_outstanding: int = 512
    max_outstanding_per_server: int = 256  # half: one dead server leaves room for the others
    conditional: tuple[tuple[str, tuple[UpstreamServer, ...]], ...] = ()
    trust_ad: bool = False  # the servers validate DNSSEC: pass their AD bit on (not conditional)


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """`cache:` size, TTL clamps, serve-stale (RFC 8767) and prefetch."""

    max_entries: int = 50000
    serve_stale: float = 86400.0  # seconds expired data may still be served; 0 disables
    prefetch: bool = True
    min_ttl: int = 0
    max_ttl: int = 86400
    negative_max_ttl: int = 3600  # RFC 2308 suggests at most 1-3 hours for negative answers


@dataclass(frozen=True, slots=True)
class LogConfig:
    """`log:` where blocked lookups are recorded (SQLite) and for how long."""

    database: Path = Path("filterdns.db")
    retention: float = 90 * 86400.0
    log_allowed: bool = False
    anonymize_clients: bool = False


@dataclass(frozen=True, slots=True)
class ListsConfig:
    """`lists:` how remote list sources are fetched and where their copies are kept."""

    refresh: float = 86400.0  # seconds between downloads of each remote source; 0: never
    cache_dir: Path = Path("lists")  # relative to the state directory by default
    timeout: float = 30.0  # a whole download, not one read
    max_megabytes: int = 64  # a bigger download is refused and the last good copy kept
    # The big default lists that are downloaded rather than shipped (UT1 adult, malware,
    # phishing, redirector; see blocklists/SOURCES.md); false keeps to the shipped files.
    download_defaults: bool = True
    # A new version of a source with fewer than (100 - max_shrink) % of the entries of its last
    # good copy is rejected and the copy kept (percent; 100 accepts any shrink).
    max_shrink: float = 90.0


@dataclass(frozen=True, slots=True)
class ScheduleRule:
    """One schedule rule: a window and what it does while active.

    Exactly one kind of action: `block_all` (with `allow` domains still answered), or `block`
    categories and/or `allow_categories` (both may be given in one rule, never overlapping).
    """

    name: str
    window: Window
    block_all: bool = False
    block: tuple[str, ...] = ()  # categories blocked during the window
    allow: tuple[str, ...] = ()  # domains still allowed during `block: all` (normalized)
    allow_categories: tuple[str, ...] = ()  # categories allowed during the window
    path: str = ""  # YAML path, e.g. "profiles.minh.schedules[0]"
    line: int | None = None  # line in the file (None for built-in band rules)


@dataclass(frozen=True, slots=True)
class BandConfig:
    """One age band as in effect: the built-in row with `age_bands:` overrides applied."""

    name: str
    categories: tuple[str, ...]  # blocked categories, always including ALWAYS_BLOCKED
    safesearch: bool
    youtube: str  # one of YOUTUBE_LEVELS
    schedules: tuple[ScheduleRule, ...]


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    """`profiles.<name>`: one child, class or group: an age band plus its own additions."""

    name: str
    age_band: str
    block: tuple[
        str, ...
    ] = ()  # extra blocked domains (normalized; a domain blocks its subdomains)
    allow: tuple[str, ...] = ()  # always-allowed domains
    categories: tuple[str, ...] = ()  # extra blocked categories
    safesearch: bool | None = None  # None: the band's
    youtube: str | None = None  # None: the band's
    schedules: tuple[ScheduleRule, ...] = ()  # in addition to the band's
    timezone: str | None = None  # None: server.timezone
    band_schedules: bool = True  # False: the band's default schedules (bedtime) do not apply
    display_name: str | None = None  # how people call it, any text: "Bình (lớp 6A)"


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """One `clients:` entry: a device (ip or mac) or a network (cidr) mapped to a profile."""

    name: str
    profile: str
    ip: str | None = None  # canonical address text
    cidr: str | None = None  # canonical network text, host bits cleared
    mac: str | None = None  # normalized aa:bb:cc:dd:ee:ff


@dataclass(frozen=True, slots=True)
class BlockingConfig:
    """`blocking:` how blocked names are answered."""

    response: str = "nxdomain"  # one of BLOCK_RESPONSES
    custom_ips: tuple[str, ...] = ()  # IPv4/IPv6 of a block page, required for `custom`
    ttl: int = 10  # seconds (a duration in YAML)
    bypass_protection: bool = True
    cname_inspection: bool = True  # CNAME/DNAME/SVCB targets are judged like the name asked
    rebinding_protection: bool = True  # no private addresses in answers to public names
    rebinding_allow: tuple[str, ...] = ()  # names whose answers may hold private addresses


# The built-in age bands (PRODUCT.md; config.example.yaml documents the same table). Each row:
# band, blocked categories (ALWAYS_BLOCKED is added to each), SafeSearch, YouTube level, and the
# default "block all" schedules as (days, from, to).
_CHILD_CATEGORIES = (
    "adult", "gambling", "dating", "drugs", "violence", "social", "chat", "bypass", "piracy",
)  # fmt: skip
BAND_TABLE: tuple[tuple[str, tuple[str, ...], bool, str, tuple[tuple[str, str, str], ...]], ...] = (
    # Games too for the youngest: app stores rate most online games 9+ or 12+ (chat with
    # strangers, in-game purchases); a schedule (`allow_categories: [games]`) opens them.
    ("under-9", (*_CHILD_CATEGORIES, "games"), True, "strict", (("daily", "20:00", "07:00"),)),
    (
        "9-12",
        _CHILD_CATEGORIES,
        True,
        "strict",
        (("sun-thu", "21:00", "06:30"), ("fri-sat", "22:00", "07:00")),
    ),
    (
        "13-15",
        ("adult", "gambling", "dating", "drugs", "violence", "bypass", "piracy"),
        True,
        "moderate",
        (("sun-thu", "22:30", "06:00"),),
    ),
    ("16-17", ("adult", "gambling", "drugs", "bypass"), True, "off", ()),
    ("adult", (), False, "off", ()),
)


def with_always_blocked(categories: Sequence[str]) -> tuple[str, ...]:
    """`categories` followed by the ALWAYS_BLOCKED ones not already in it."""
    return tuple(dict.fromkeys((*categories, *ALWAYS_BLOCKED)))


def _builtin_bands() -> tuple[BandConfig, ...]:
    bands = []
    for name, categories, safesearch, youtube, windows in BAND_TABLE:
        rules = tuple(
            ScheduleRule(
                name="bedtime",
                window=Window(parse_days([days]), parse_clock(start), parse_clock(end, end=True)),
                block_all=True,
                path=f"age_bands.{name}.schedules[{index}]",
            )
            for index, (days, start, end) in enumerate(windows)
        )
        bands.append(BandConfig(name, with_always_blocked(categories), safesearch, youtube, rules))
    return tuple(bands)


BUILTIN_BANDS = _builtin_bands()
# Every device no client rule names gets this unless the file names a `default_profile`: a
# filter that protects before anyone wrote a file (a bedtime needs a named child).
HOUSEHOLD = ProfileConfig(name="household", age_band="13-15", band_schedules=False)


@dataclass(frozen=True, slots=True)
class ReportConfig:
    """`report:` the language and footer of the reports parents and teachers read."""

    lang: str = "en"  # one of REPORT_LANGUAGES
    footer: str = ""  # e.g. where to report harmful content (a national child-protection line)


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """One `alerts:` rule: enough blocked lookups of some categories within a window."""

    name: str
    categories: tuple[str, ...]
    threshold: int = 3
    within: float = 600.0
    per_profile: bool = True
    command: str | None = None  # run with the event as JSON on stdin
    webhook: str | None = None  # POSTed the event as JSON
    timeout: float = 10.0
    retries: int = 3


REPORT_LANGUAGES = languages()  # the report catalogues: querylog/locale/<lang>.toml
ALERT_KEYS = tuple(f.name for f in fields(AlertConfig))


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration; `source` is the file it came from (None for embedded defaults)."""

    server: ServerConfig
    upstreams: UpstreamsConfig
    cache: CacheConfig = field(default_factory=CacheConfig)
    log: LogConfig = field(default_factory=LogConfig)
    lists: ListsConfig = field(default_factory=ListsConfig)
    # Category name -> its list sources ("shipped", a file path, an http(s):// URL), in file
    # order; categories not named here keep their shipped sources.
    categories: tuple[tuple[str, tuple[str, ...]], ...] = ()
    source: str | None = None
    # The effective age bands: all of BANDS, in that order, with `age_bands:` overrides applied.
    age_bands: tuple[BandConfig, ...] = BUILTIN_BANDS
    profiles: tuple[ProfileConfig, ...] = (HOUSEHOLD,)
    calendars: tuple[Calendar, ...] = ()
    clients: tuple[ClientConfig, ...] = ()
    default_profile: str = HOUSEHOLD.name  # for clients that match no `clients:` entry
    blocking: BlockingConfig = field(default_factory=BlockingConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    alerts: tuple[AlertConfig, ...] = ()
    # The top-level keys the file gives a value (not null, not empty), and the text it was read
    # from: what a reload compares and saves. Neither takes part in equality: two files that
    # say the same thing are the same configuration.
    given: tuple[str, ...] = field(default=(), compare=False)
    text: str | None = field(default=None, compare=False, repr=False)

    def band(self, name: str) -> BandConfig:
        """The effective age band `name`; KeyError when there is none."""
        for band in self.age_bands:
            if band.name == name:
                return band
        raise KeyError(name)

    def profile(self, name: str) -> ProfileConfig:
        """The profile `name`; KeyError when there is none."""
        for profile in self.profiles:
            if profile.name == name:
                return profile
        raise KeyError(name)

    def display_name(self, name: str) -> str:
        """What people call profile `name`: its `display_name`, else the name itself."""
        for profile in self.profiles:
            if profile.name == name:
                return profile.display_name or name
        return name

    def schedules_of(self, profile: ProfileConfig) -> tuple[ScheduleRule, ...]:
        """The schedule rules of `profile`: its band's (unless turned off), then its own."""
        band = self.band(profile.age_band).schedules if profile.band_schedules else ()
        return band + profile.schedules


SYSTEM_CONFIG = Path("/etc/filterdns/config.yaml")
LOCAL_CONFIG = Path("config.yaml")
STATE_DIR_ENV = "FILTERDNS_STATE_DIR"
ROOT_STATE_DIR = Path("/var/lib/filterdns")
USER_STATE_DIR = Path("state")  # relative to the working directory: ./state/filterdns.db
ROOT_LISTEN = (ListenAddress("0.0.0.0", 53), ListenAddress("::", 53))
DEFAULT_LISTEN_PORT = 53

SECTIONS: dict[str, tuple[str, ...]] = {
    "server": tuple(f.name for f in fields(ServerConfig)),
    "upstreams": tuple(f.name for f in fields(UpstreamsConfig)),
    "cache": tuple(f.name for f in fields(CacheConfig)),
    "log": tuple(f.name for f in fields(LogConfig)),
    "lists": tuple(f.name for f in fields(ListsConfig)),
    "blocking": tuple(f.name for f in fields(BlockingConfig)),
    "report": tuple(f.name for f in fields(ReportConfig)),
}
# These map names of the user's choosing (or are lists or one value), so their keys are not
# fixed like a section's.
POLICY_KEYS = (
    "categories",
    "age_bands",
    "profiles",
    "calendars",
    "clients",
    "default_profile",
    "alerts",
)
TOP_LEVEL = (*SECTIONS, *POLICY_KEYS)
BAND_KEYS = ("categories", "safesearch", "youtube", "schedules")
PROFILE_KEYS = tuple(f.name for f in fields(ProfileConfig) if f.name != "name")
SCHEDULE_KEYS = ("name", "days", "from", "to", "block", "allow", "allow_categories", "except")
CLIENT_KEYS = ("name", "ip", "cidr", "mac", "profile")
RATE_LIMIT_KEYS = tuple(f.name for f in fields(RateLimit))
MAX_RATE = 1_000_000
# The categories shipped in blocklists/ (lists.shipped keeps the same tuple).
DEFAULT_CATEGORIES = (
    "adult",
    "gambling",
    "dating",
    "drugs",
    "violence",
    "social",
    "chat",
    "games",
    "video",
    "bypass",
    "malware",
    "phishing",
    "piracy",
    "cryptojacking",
    "stalkerware",
)
SHIPPED_SOURCE = "shipped"
_CATEGORY = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_PERCENT = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*%?\s*")
# Letters of any script (Bình, Лена), digits, '-', '_' and '.': a name is typed on command lines
# and stored in the log; spaces and the rest belong in `display_name`.
_NAME = re.compile(r"[^\W_][\w.-]{0,63}")
NAME_RULE = "letters, digits, '-', '_' and '.', at most 64, starting with a letter or digit"
DISPLAY_HINT = '; for spaces and the like add display_name, e.g. bo-me: {display_name: "bố mẹ"}'
_MAC = re.compile(r"[0-9a-f]{12}")

MAX_CONNECTIONS = 1_000_000
MAX_OUTSTANDING = 65536  # ids on one pooled TCP connection to an upstream
MAX_CACHE_ENTRIES = 100_000_000

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
T = TypeVar("T")
_NONE: tuple[str, ...] = ()


# Strings that name addresses and servers


def is_domain_name(name: str) -> bool:
    """True for a normalised name of 1-63 character labels (letters, digits, '-', '_')."""
    return 0 < len(name) <= 253 and all(_LABEL.fullmatch(label) for label in name.split("."))


def _split_host_port(text: str) -> tuple[str, str | None]:
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


def _port(text: str, low: int) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{show(text)} is not a port number")
    port = int(text) if len(text) <= 6 else 65536
    if not low <= port <= 65535:
        raise ValueError(f"port {port if port <= 65535 else text} is not between {low} and 65535")
    return port


def _ip(host: str) -> str | None:
    """The canonical text of an IP address literal, or None."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def parse_listen(text: str) -> ListenAddress:
    """`127.0.0.1:5353`, `[::1]:5353` or a bare address (port 53); ValueError says what is wrong."""
    host, port_text = _split_host_port(text.strip())
    ip = _ip(host)
    if ip is None:
        raise ValueError(
            f"{show(host)} is not an IP address; listen on an address such as 0.0.0.0, ::, "
            "127.0.0.1 or ::1"
        )
    port = DEFAULT_LISTEN_PORT if port_text is None else _port(port_text, 0)
    return ListenAddress(ip, port)


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
    host, port_text = _split_host_port(spec)
    ip = _ip(host)
    if ip is None:
        message = (
            f"upstream host must be an IP address, not {show(host)} "
            "(the proxy must not depend on DNS to find its resolvers)"
        )
        if scheme == "tls" and not has_name and is_domain_name(normalize_name(host)):
            message += f"; write tls://<its address>#{host}"
        raise ValueError(message)
    port = DEFAULT_PORTS[scheme] if port_text is None else _port(port_text, 1)
    if scheme != "tls":
        return UpstreamServer(scheme, ip, port)
    if not sni.strip():
        raise ValueError(
            "tls:// needs the server name after '#' to verify its certificate, "
            "e.g. tls://1.1.1.1#cloudflare-dns.com"
        )
    name = normalize_name(sni)
    if not is_domain_name(name):
        raise ValueError(f"{show(sni)} is not a valid server name for the certificate")
    return UpstreamServer(scheme, ip, port, name)


_URL_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*")
HTTPS_FORMS = (
    "https://1.1.1.1/dns-query, https://1.1.1.1/dns-query#cloudflare-dns.com "
    "or https://dns.quad9.net/dns-query#9.9.9.9"
)


def _https_upstream(spec: str) -> UpstreamServer:
    """The part of `https://...` after the scheme; see parse_upstream."""
    rest, _hash, after = spec.partition("#")
    after = after.strip()
    slash = rest.find("/")
    authority, path = (rest, "/dns-query") if slash < 0 else (rest[:slash], rest[slash:])
    if not _URL_PATH.fullmatch(path):
        raise ValueError(f"{show(path)} is not a URL path like /dns-query")
    host, port_text = _split_host_port(authority)
    port = DEFAULT_PORTS["https"] if port_text is None else _port(port_text, 1)
    ip = _ip(host)
    if ip is not None:  # https://1.1.1.1/dns-query[#name]
        if not after:
            return UpstreamServer("https", ip, port, None, path)
        name = normalize_name(after)
        if _ip(after) is not None or not is_domain_name(name):
            raise ValueError(
                f"{show(after)} after '#' is not a server name for the certificate; write "
                f"{HTTPS_FORMS}"
            )
        return UpstreamServer("https", ip, port, name, path)
    name = normalize_name(host)
    if not is_domain_name(name):
        raise ValueError(f"{show(host)} is not an IP address or host name; write {HTTPS_FORMS}")
    bracketed = after.startswith("[") and after.endswith("]")
    address = _ip(after[1:-1] if bracketed else after)
    if address is None:  # https://dns.quad9.net/dns-query#9.9.9.9
        raise ValueError(
            f"{show(after)} after '#' is not an IP address; the proxy must not depend on DNS "
            f"to find its resolvers, so write https://{host}{path}#<its address>"
            if after
            else f"upstream host must be an IP address, not {show(host)} (the proxy must not "
            f"depend on DNS to find its resolvers); write https://{host}{path}#<its address>"
        )
    return UpstreamServer("https", address, port, name, path)


def parse_network(text: str) -> IPNetwork:
    """An address (`::1`, a /32 or /128) or a network (`192.168.0.0/16`; host bits ignored)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(
            f"{show(text)} is not an IP address or network like 192.168.0.0/16 or fe80::/10"
        ) from None


def parse_domain(text: str) -> str:
    """A domain of a block or allow list, normalised; a leading `*.` is dropped (a domain
    covers its subdomains anyway). ValueError when it is not a domain name."""
    name = normalize_name(text)
    if name.startswith("*."):
        name = name[2:]
    if not is_domain_name(name):
        raise ValueError(f"{show(text)} is not a domain name like example.com")
    return name


def parse_address(text: str) -> str:
    """The canonical text of one IPv4 or IPv6 address; ValueError otherwise."""
    ip = _ip(text.strip())
    if ip is None:
        raise ValueError(f"{show(text)} is not an IP address like 192.168.1.2 or fd00::2")
    return ip


def parse_mac(text: str) -> str:
    """`AA-BB-CC-DD-EE-FF`, `aa:bb:cc:dd:ee:ff` or `aabb.ccdd.eeff` -> aa:bb:cc:dd:ee:ff."""
    digits = text.strip().lower()
    for separator in ":-.":
        digits = digits.replace(separator, "")
    groups = re.split(r"[:.-]", text.strip())
    if not _MAC.fullmatch(digits) or len({len(group) for group in groups}) != 1:
        raise ValueError(f"{show(text)} is not a MAC address like aa:bb:cc:dd:ee:ff")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def _date_range(text: str) -> tuple[date, date]:
    """One calendar entry, "2026-12-25" or "2026-12-24..2027-01-04", as (first, last)."""
    return parse_calendar("", [text]).ranges[0]


CLIENT_EXAMPLE = "{name: tablet, ip: 192.168.1.23, profile: minh}"
CLIENT_HINTS = {
    "name": "a name for the device or network",
    "ip": "an IP address like 192.168.1.23",
    "cidr": "a network like 10.6.1.0/24",
    "mac": "a MAC address like aa:bb:cc:dd:ee:ff",
    "profile": "the profile this client gets",
}


# Walking the document


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


class _ConfigWalker(Walker):
    """The readers for this configuration's own value types."""

    def __init__(self, base_dir: Path | None) -> None:
        super().__init__()
        self.base_dir = base_dir
        self.known_categories: tuple[str, ...] = DEFAULT_CATEGORIES
        self.known_calendars: tuple[Calendar, ...] = ()
        self.calendar_names: tuple[str, ...] = ()  # every name under calendars:, bad ones too

    def parsed(
        self, node: Node, path: str, what: str, parse: Callable[[str], T], empty: str | None
    ) -> tuple[T, ...] | None:
        """A list of strings each read by `parse`; repeats are problems, and so is an empty
        list unless `empty` is None."""
        values: list[T] = []
        first_line: dict[T, int] = {}
        entries = self.items(node, path, what)
        if entries is None:
            return None
        good = True
        for child, child_path in entries:
            text = self.text(child, child_path, what)
            if text is None:
                good = False
                continue
            try:
                value = parse(text)
            except ValueError as exc:
                self.problem(child, child_path, str(exc))
                good = False
                continue
            if value in first_line:
                message = f"{show(text)} is listed twice (first on line {first_line[value]})"
                self.problem(child, child_path, message)
                good = False
                continue
            first_line[value] = line_of(child)
            values.append(value)
        if good and not values and empty is not None:
            self.problem(node, path, empty)
            return None
        return tuple(values) if good else None

    def listen(self, node: Node, path: str) -> tuple[ListenAddress, ...] | None:
        return self.parsed(
            node, path, "addresses", parse_listen, "needs at least one address to listen on"
        )

    def networks(self, node: Node, path: str) -> tuple[IPNetwork, ...] | None:
        empty = "is empty, so every client would be refused; list the networks that may ask"
        return self.parsed(node, path, "addresses or networks", parse_network, empty)

    def servers(self, node: Node, path: str) -> tuple[UpstreamServer, ...] | None:
        return self.parsed(node, path, "servers", parse_upstream, "needs at least one server")

    def conditional(
        self, node: Node, path: str
    ) -> tuple[tuple[str, tuple[UpstreamServer, ...]], ...] | None:
        """`{home.arpa: 192.168.1.1, 168.192.in-addr.arpa: [...]}` in file order."""
        routes: list[tuple[str, tuple[UpstreamServer, ...]]] = []
        first_line: dict[str, int] = {}
        good = True
        expected = "a mapping of domain suffixes to servers, e.g. {home.arpa: 192.168.1.1}"
        for key, key_node, value in self.pairs(node, path, expected):
            key_path = join(path, key)
            suffix = normalize_name(key)
            if suffix in ("", "."):
                message = "the root cannot be a conditional suffix; upstreams.servers answer it"
                self.problem(key_node, key_path, message)
                good = False
            elif not is_domain_name(suffix):
                self.problem(key_node, key_path, f"{show(key)} is not a valid domain name")
                good = False
            elif suffix in first_line:
                message = f"{show(key)} repeats the suffix on line {first_line[suffix]}"
                self.problem(key_node, key_path, message)
                good = False
            else:
                first_line[suffix] = line_of(key_node)
            servers = self.servers(value, key_path)
            if servers is None:
                good = False
            elif good:
                routes.append((suffix, servers))
        return tuple(routes) if good else None

    def categories(self, node: Node, path: str) -> tuple[tuple[str, tuple[str, ...]], ...] | None:
        """`{gambling: [shipped, lists/extra.txt, "https://..."]}` in file order."""
        found: list[tuple[str, tuple[str, ...]]] = []
        good = True
        expected = "a mapping of category names to list sources, e.g. {gambling: [shipped]}"
        for name, key_node, value in self.pairs(node, path, expected):
            key_path = join(path, name)
            if not _CATEGORY.fullmatch(name):
                message = (
                    f"{show(name)} is not a category name (lower-case letters, digits, '-' and"
                    " '_', at most 40)"
                )
                self.problem(key_node, key_path, message)
                good = False
            sources = self.parsed(
                value,
                key_path,
                "list sources",
                functools.partial(self.list_source, name),
                "needs at least one source; write [shipped] for the shipped list",
            )
            if sources is None:
                good = False
            elif good:
                found.append((name, sources))
        return tuple(found) if good else None

    def list_source(self, category: str, text: str) -> str:
        """ "shipped", an http(s):// URL, or a file path (relative to the configuration file)."""
        text = text.strip()
        if text == SHIPPED_SOURCE:
            if category not in DEFAULT_CATEGORIES:
                raise ValueError(
                    f"{category!r} has no shipped list; shipped categories: "
                    + ", ".join(DEFAULT_CATEGORIES)
                )
            return text
        scheme = text.split("://", 1)[0].lower() if "://" in text else ""
        if scheme in ("http", "https"):
            if not text.split("://", 1)[1].split("/", 1)[0]:
                raise ValueError(f"{show(text)} has no host")
            return text
        if scheme:
            raise ValueError(f"{show(text)}: list sources are files or http(s):// URLs")
        path = Path(text).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return str(path)

    def database(self, node: Node, path: str) -> Path | None:
        """A file path; a relative one is taken from the configuration file's directory."""
        text = self.text(node, path, "a file path")
        if text is None:
            return None
        database = Path(text.strip()).expanduser()
        if not database.is_absolute() and self.base_dir is not None:
            database = self.base_dir / database
        return database

    def positive(self, node: Node, path: str) -> float | None:
        return self.duration(node, path, positive=True)

    def whole(self, low: int, high: int) -> Callable[[Node, str], int | None]:
        return functools.partial(self.integer, low=low, high=high)

    def percent(self, node: Node, path: str) -> float | None:
        """A share from 0 to 100 percent: `90%`, `90 %` or a plain `90`."""
        text = self.scalar(node, path, "a percentage like 90%")
        if text is None:
            return None
        match = _PERCENT.fullmatch(text)
        if match is None:
            self.problem(node, path, f"{show(text)} is not a percentage like 90% (0 to 100)")
            return None
        value = float(match[1])
        if value > 100:
            self.problem(node, path, f"{show(text)} is more than 100%")
            return None
        return value

    def strategy(self, node: Node, path: str) -> str | None:
        return self.choice(node, path, STRATEGIES)

    # The parental policy

    def timezone(self, node: Node, path: str) -> str | None:
        text = self.text(node, path, "an IANA time zone like Europe/Berlin")
        if text is None:
            return None
        try:
            return parse_timezone(text)
        except ValueError as exc:
            self.problem(node, path, str(exc))
            return None

    def response(self, node: Node, path: str) -> str | None:
        # `response: null` is the mode, not YAML's null.
        if isinstance(node, ScalarNode) and node.value in ("null", "Null", "NULL"):
            return "null"
        return self.choice(node, path, BLOCK_RESPONSES)

    def addresses(self, node: Node, path: str) -> tuple[str, ...] | None:
        return self.parsed(node, path, "IP addresses", parse_address, None)

    def domains(self, node: Node, path: str) -> tuple[str, ...] | None:
        return self.parsed(node, path, "domains", parse_domain, None)

    def category(self, text: str) -> str:
        """A known category name (shipped or under `categories:`); ValueError naming them."""
        name = text.strip()
        if name in self.known_categories:
            return name
        if name == "all":
            raise ValueError('"all" blocks everything only on its own: write block: all')
        message = f"{show(text)} is not a category; valid categories: " + ", ".join(
            self.known_categories
        )
        close = difflib.get_close_matches(name, self.known_categories, n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
        raise ValueError(message)

    def metrics_address(self, node: Node, path: str) -> ListenAddress | None:
        text = self.text(node, path, "an address and port like 127.0.0.1:9153")
        if text is None:
            return None
        try:
            return parse_listen(text)
        except ValueError as exc:
            self.problem(node, path, str(exc))
            return None

    def rate_limit(self, node: Node, path: str) -> RateLimit | None:
        """`{per_client_qps: 50, burst: 200}`; the key left out keeps its default."""
        fields_ = self.section(node, path, RATE_LIMIT_KEYS)
        if not isinstance(node, MappingNode):
            return None
        default = RateLimit()
        return RateLimit(
            self.field(
                fields_, path, "per_client_qps", self.whole(1, MAX_RATE), default.per_client_qps
            ),
            self.field(fields_, path, "burst", self.whole(1, MAX_RATE), default.burst),
        )

    def language(self, node: Node, path: str) -> str | None:
        return self.choice(node, path, REPORT_LANGUAGES)

    def footer(self, node: Node, path: str) -> str | None:
        return "" if is_null(node) else self.scalar(node, path, "a line of text")

    def alerts(self, node: Node, path: str) -> tuple[AlertConfig, ...]:
        """The `alerts:` list: categories, a threshold within a window, and at least one action."""
        found: list[AlertConfig] = []
        for index, (child, child_path) in enumerate(self.items(node, path, "alert rules") or []):
            if not isinstance(child, MappingNode):
                message = (
                    "expected an alert like {categories: [adult], threshold: 3, within: 10m, "
                    f"webhook: https://...}}, not {kind(child)}"
                )
                self.problem(child, child_path, message)
                continue
            before = len(self.problems)
            section = self.section(child, child_path, ALERT_KEYS)
            if "categories" not in section:
                self.problem(
                    child, child_path, "needs categories, e.g. categories: [adult, bypass]"
                )
            if "command" not in section and "webhook" not in section:
                self.problem(child, child_path, "needs an action: command, webhook or both")
            name = self.field(section, child_path, "name", self.text, f"alert {index + 1}")
            webhook = self.field(section, child_path, "webhook", self.url, None)
            rule = AlertConfig(
                name=name.strip(),
                categories=self.field(section, child_path, "categories", self.category_list, ()),
                threshold=self.field(section, child_path, "threshold", self.whole(1, 1_000_000), 3),
                within=self.field(section, child_path, "within", self.positive, 600.0),
                per_profile=self.field(section, child_path, "per_profile", self.boolean, True),
                command=self.field(section, child_path, "command", self.text, None),
                webhook=webhook,
                timeout=self.field(section, child_path, "timeout", self.positive, 10.0),
                retries=self.field(section, child_path, "retries", self.whole(0, 10), 3),
            )
            if len(self.problems) == before:
                found.append(rule)
        return tuple(found)

    def url(self, node: Node, path: str) -> str | None:
        text = self.text(node, path, "an http:// or https:// URL")
        if text is None:
            return None
        text = text.strip()
        scheme, _, rest = text.partition("://")
        if scheme.lower() not in ("http", "https") or not rest.split("/", 1)[0]:
            self.problem(node, path, f"{show(text)} is not an http:// or https:// URL")
            return None
        return text

    def category_list(self, node: Node, path: str) -> tuple[str, ...] | None:
        return self.parsed(node, path, "categories", self.category, None)

    def band_name(self, node: Node, path: str) -> str | None:
        text = self.text(node, path, "an age band: " + ", ".join(BANDS))
        if text is None:
            return None
        if text.strip() not in BANDS:
            message = f"{show(text)} is not an age band; valid bands: " + ", ".join(BANDS)
            self.problem(node, path, message)
            return None
        return text.strip()

    def youtube(self, node: Node, path: str) -> str | None:
        return self.choice(node, path, YOUTUBE_LEVELS)

    def name_key(self, key: str, key_node: Node, path: str, what: str) -> bool:
        """True when `key` is a valid name for a profile or calendar; a problem otherwise."""
        if _NAME.fullmatch(unicodedata.normalize("NFC", key)):
            return True
        hint = DISPLAY_HINT if what == "profile" else ""
        self.problem(key_node, path, f"{show(key)} is not a {what} name ({NAME_RULE}{hint})")
        return False

    def calendars(self, node: Node | None, path: str) -> tuple[Calendar, ...] | None:
        """`{school-holidays: ["2026-12-24..2027-01-04", "2027-02-16"]}` in file order."""
        found: list[Calendar] = []
        good = True
        expected = 'a mapping of calendar names to dates, e.g. {holidays: ["2026-12-24"]}'
        for name, key_node, value in self.pairs(node, path, expected):
            key_path = join(path, name)
            good = self.name_key(name, key_node, key_path, "calendar") and good
            ranges = self.parsed(value, key_path, "dates", _date_range, None)
            if ranges is None:
                good = False
            elif good:
                found.append(Calendar(name, tuple(sorted(ranges))))
        return tuple(found) if good else None

    def days(self, node: Node, path: str) -> frozenset[int] | None:
        entries = self.items(node, path, "days")
        if entries is None:
            return None
        days: set[int] = set()
        good = True
        for child, child_path in entries:
            text = self.text(child, child_path, "a day like mon or a range like mon-fri")
            if text is None:
                good = False
                continue
            try:
                days |= parse_days([text])
            except ValueError as exc:
                self.problem(child, child_path, str(exc))
                good = False
        if good and not days:
            self.problem(node, path, "needs at least one day, e.g. [mon-fri] or daily")
            return None
        return frozenset(days) if good else None

    def clock(self, node: Node, path: str, *, end: bool) -> int | None:
        text = self.text(node, path, 'a time "HH:MM"')
        if text is None:
            return None
        try:
            return parse_clock(text, end=end)
        except ValueError as exc:
            self.problem(node, path, str(exc))
            return None

    def schedules(self, node: Node, path: str) -> tuple[ScheduleRule, ...] | None:
        """A list of schedule rules; `[]` (or no value) is no rules."""
        entries = self.items(node, path, "schedule rules")
        if entries is None:
            return None
        rules = [
            self.schedule(child, child_path, i) for i, (child, child_path) in enumerate(entries)
        ]
        return tuple(r for r in rules if r is not None) if None not in rules else None

    def schedule(self, node: Node, path: str, index: int) -> ScheduleRule | None:
        """`{name, days, from, to, block: all | [categories], allow, allow_categories, except}`."""
        before = len(self.problems)
        if is_null(node):
            self.problem(node, path, "is empty; expected a schedule rule with days, from and to")
            return None
        fields_ = self.section(node, path, SCHEDULE_KEYS)
        if not isinstance(node, MappingNode):
            return None
        for key, example in (("days", "[mon-fri]"), ("from", '"21:00"'), ("to", '"06:30"')):
            if key not in fields_:
                self.problem(node, path, f"needs {key}, e.g. {key}: {example}")
        name = self.field(fields_, path, "name", self.text, f"schedule {index + 1}").strip()
        days = self.field(fields_, path, "days", self.days, frozenset[int]())
        start = self.field(fields_, path, "from", functools.partial(self.clock, end=False), 0)
        end = self.field(fields_, path, "to", functools.partial(self.clock, end=True), 0)

        block_all = False
        block: tuple[str, ...] = ()
        before_actions = len(self.problems)
        block_node = fields_.get("block")
        if block_node is not None:
            entries = self.items(block_node, join(path, "block"), "categories")
            texts = [child.value for child, _ in entries or () if isinstance(child, ScalarNode)]
            if texts == ["all"]:
                block_all = True
            elif entries is not None:
                block = self.field(fields_, path, "block", self.category_list, _NONE)
        allow = self.field(fields_, path, "allow", self.domains, _NONE)
        allowed = self.field(fields_, path, "allow_categories", self.category_list, _NONE)
        actions_read = len(self.problems) == before_actions
        calendar = self.field(fields_, path, "except", self.calendar_ref, None)

        if not (block_all or block or allowed) and actions_read:
            message = (
                "needs an action: block: all, block: [categories] or allow_categories: [categories]"
            )
            self.problem(node, path, message)
        if "allow" in fields_ and not block_all:
            message = (
                "lists domains still answered during block: all, so it needs block: all; "
                "a profile's own allow: list applies at all times"
            )
            self.problem(fields_["allow"], join(path, "allow"), message)
        if "allow_categories" in fields_:
            allowed_path = join(path, "allow_categories")
            if block_all:
                message = (
                    "cannot be combined with block: all, which blocks every category; "
                    "use allow: for domains to keep"
                )
                self.problem(fields_["allow_categories"], allowed_path, message)
            for category in allowed:
                if category in block:
                    message = f"{category!r} is both blocked and allowed by this rule"
                    self.problem(fields_["allow_categories"], allowed_path, message)
                elif category in ALWAYS_BLOCKED:
                    message = f"{category!r} is always blocked and cannot be allowed"
                    self.problem(fields_["allow_categories"], allowed_path, message)
        if len(self.problems) > before:
            return None
        window = Window(days, start, end, calendar)
        return ScheduleRule(
            name, window, block_all, block, allow, allowed, path=path, line=line_of(node)
        )

    def calendar_ref(self, node: Node, path: str) -> Calendar | None:
        text = self.text(node, path, "a calendar name")
        if text is None:
            return None
        for calendar in self.known_calendars:
            if calendar.name == text.strip():
                return calendar
        if text.strip() in self.calendar_names:
            return None  # defined, but with problems of its own
        if self.known_calendars:
            names = ", ".join(c.name for c in self.known_calendars)
            message = f"{show(text)} is not a calendar; calendars: {names}"
        else:
            message = f"{show(text)} is not a calendar; none are defined under calendars:"
        self.problem(node, path, message)
        return None

    def age_bands(
        self, node: Node | None, path: str, base: Sequence[BandConfig]
    ) -> list[BandConfig]:
        """The effective bands: `base` with the overrides in `node` applied."""
        bands = {band.name: band for band in base}
        expected = "a mapping of age bands to overrides, e.g. {9-12: {youtube: moderate}}"
        for name, key_node, value in self.pairs(node, path, expected):
            band_path = join(path, name)
            known = name in bands
            if not known:
                message = f"{show(name)} is not an age band; valid bands: " + ", ".join(BANDS)
                self.problem(key_node, band_path, message)
            section = self.section(value, band_path, BAND_KEYS)
            # An unknown band's overrides are still checked (every problem in one pass), as if
            # they were the adult band's.
            band = bands[name] if known else bands["adult"]
            categories = self.field(
                section, band_path, "categories", self.category_list, band.categories
            )
            overridden = BandConfig(
                name,
                with_always_blocked(categories),
                self.field(section, band_path, "safesearch", self.boolean, band.safesearch),
                self.field(section, band_path, "youtube", self.youtube, band.youtube),
                self.field(section, band_path, "schedules", self.schedules, band.schedules),
            )
            if known:
                bands[name] = overridden
        return list(bands.values())

    def profiles(self, node: Node | None, path: str) -> tuple[list[ProfileConfig], list[str]]:
        """The profiles in `node`, and the names of all of them (bad ones too)."""
        found: list[ProfileConfig] = []
        names: list[str] = []
        expected = "a mapping of profile names to profiles, e.g. {minh: {age_band: 9-12}}"
        for key, key_node, value in self.pairs(node, path, expected):
            name = unicodedata.normalize("NFC", key)
            profile_path = join(path, name)
            before = len(self.problems)
            # A bad name is one problem; what the profile holds is still checked, so every
            # problem shows in one pass.
            self.name_key(name, key_node, profile_path, "profile")
            names.append(name)  # a bad name is not also an unknown profile where it is used
            section = self.section(value, profile_path, PROFILE_KEYS)
            band = self.field(section, profile_path, "age_band", self.band_name, "")
            if "age_band" not in section:
                message = "needs age_band: one of " + ", ".join(BANDS)
                self.problem(key_node, profile_path, message)
            block = self.field(section, profile_path, "block", self.domains, _NONE)
            allow = self.field(section, profile_path, "allow", self.domains, _NONE)
            for domain in sorted(set(block) & set(allow)):
                message = f"{show(domain)} is both blocked (block:) and allowed here"
                self.problem(section["allow"], join(profile_path, "allow"), message)
            profile = ProfileConfig(
                name,
                band,
                block,
                allow,
                self.field(section, profile_path, "categories", self.category_list, _NONE),
                self.field(section, profile_path, "safesearch", self.optional_boolean, None),
                self.field(section, profile_path, "youtube", self.youtube, None),
                self.field(section, profile_path, "schedules", self.schedules, ()),
                self.field(section, profile_path, "timezone", self.timezone, None),
                self.field(section, profile_path, "band_schedules", self.boolean, True),
                self.field(section, profile_path, "display_name", self.display_name, None),
            )
            if len(self.problems) == before:
                found.append(profile)
        return found, names

    def display_name(self, node: Node, path: str) -> str | None:
        """Any text of 1 to 64 characters without control characters, NFC-normalised."""
        text = self.text(node, path, 'a name for people, e.g. "Bình (lớp 6A)"')
        if text is None:
            return None
        text = unicodedata.normalize("NFC", text.strip())
        if not 0 < len(text) <= 64 or any(unicodedata.category(c)[0] == "C" for c in text):
            message = f"{show(text)} is not a display name: 1 to 64 characters, no control ones"
            self.problem(node, path, message)
            return None
        return text

    def optional_boolean(self, node: Node, path: str) -> bool | None:
        return self.boolean(node, path)

    def clients(self, node: Node, path: str, profiles: Sequence[str]) -> tuple[ClientConfig, ...]:
        """The `clients:` list; every client names a profile and exactly one of ip, cidr, mac."""
        found: list[ClientConfig] = []
        seen: dict[tuple[str, str], str] = {}  # (key, value) -> where it was first given
        for child, child_path in self.items(node, path, "clients") or []:
            if is_null(child) or not isinstance(child, MappingNode):
                message = f"expected a client like {CLIENT_EXAMPLE}, not {kind(child)}"
                self.problem(child, child_path, message)
                continue
            before = len(self.problems)
            section = self.section(child, child_path, CLIENT_KEYS)
            values: dict[str, str] = {}
            for key, read in (
                ("name", lambda text: text.strip()),
                ("ip", parse_address),
                ("cidr", lambda text: str(parse_network(text))),
                ("mac", parse_mac),
                ("profile", lambda text: unicodedata.normalize("NFC", text.strip())),
            ):
                key_node = section.get(key)
                if key_node is None:
                    continue
                key_path = join(child_path, key)
                text = self.text(key_node, key_path, CLIENT_HINTS[key])
                if text is None:
                    continue
                try:
                    value = read(text)
                except ValueError as exc:
                    self.problem(key_node, key_path, str(exc))
                    continue
                values[key] = value
                if key in ("name", "ip", "cidr", "mac"):
                    first = seen.get((key, value))
                    if first is not None:
                        message = f"{show(value)} is already the {key} of {first}"
                        self.problem(key_node, key_path, message)
                    else:
                        seen[(key, value)] = f"{child_path} on line {line_of(key_node)}"
            for key in ("name", "profile"):
                if key not in section:
                    self.problem(child, child_path, f"needs {key}: {CLIENT_HINTS[key]}")
            given = [key for key in ("ip", "cidr", "mac") if key in section]
            if not given:
                self.problem(child, child_path, "needs one of ip, cidr or mac")
            elif len(given) > 1:
                message = (
                    f"has {' and '.join(given)}; give exactly one of ip, cidr or mac "
                    "(a device with several addresses gets one entry each)"
                )
                self.problem(child, child_path, message)
            profile = values.get("profile")
            if profile is not None and profile not in profiles:
                message = f"{show(profile)} is not a profile; profiles: " + ", ".join(profiles)
                self.problem(section["profile"], join(child_path, "profile"), message)
            if len(self.problems) == before:
                found.append(
                    ClientConfig(
                        values["name"],
                        values["profile"],
                        ip=values.get("ip"),
                        cidr=values.get("cidr"),
                        mac=values.get("mac"),
                    )
                )
        return tuple(found)


def _build(w: _ConfigWalker, root: Node | None, base: Config, source: str | None) -> Config:
    top = w.section(root, "", TOP_LEVEL, _notes(""))

    path = "server"
    section = w.section(top.get(path), path, SECTIONS[path], _notes(path))
    b = base.server
    server = ServerConfig(
        listen=w.field(section, path, "listen", w.listen, b.listen),
        allow_clients=w.field(section, path, "allow_clients", w.networks, b.allow_clients),
        tcp_idle_timeout=w.field(section, path, "tcp_idle_timeout", w.positive, b.tcp_idle_timeout),
        max_tcp_connections=w.field(
            section, path, "max_tcp_connections", w.whole(1, MAX_CONNECTIONS), b.max_tcp_connections
        ),
        max_tcp_connections_per_client=w.field(
            section,
            path,
            "max_tcp_connections_per_client",
            w.whole(1, MAX_CONNECTIONS),
            b.max_tcp_connections_per_client,
        ),
        shutdown_grace=w.field(section, path, "shutdown_grace", w.duration, b.shutdown_grace),
        timezone=_optional(
            w, section, path=path, key="timezone", read=w.timezone, default=b.timezone
        ),
        user=_optional(w, section, path=path, key="user", read=w.text, default=b.user),
        metrics=_optional(
            w, section, path=path, key="metrics", read=w.metrics_address, default=b.metrics
        ),
        rate_limit=_optional(
            w, section, path=path, key="rate_limit", read=w.rate_limit, default=b.rate_limit
        ),
    )
    per_client = _below(
        w, section, path, ("max_tcp_connections_per_client", "max_tcp_connections"),
        (server.max_tcp_connections_per_client, server.max_tcp_connections), strict=True,
    )  # fmt: skip
    server = replace(server, max_tcp_connections_per_client=per_client)

    path = "upstreams"
    section = w.section(top.get(path), path, SECTIONS[path], _notes(path))
    u = base.upstreams
    upstreams = UpstreamsConfig(
        servers=w.field(section, path, "servers", w.servers, u.servers),
        strategy=w.field(section, path, "strategy", w.strategy, u.strategy),
        timeout=w.field(section, path, "timeout", w.positive, u.timeout),
        backoff=w.field(section, path, "backoff", w.duration, u.backoff),
        max_outstanding=w.field(
            section, path, "max_outstanding", w.whole(1, MAX_OUTSTANDING), u.max_outstanding
        ),
        max_outstanding_per_server=w.field(
            section,
            path,
            "max_outstanding_per_server",
            w.whole(1, MAX_OUTSTANDING),
            u.max_outstanding_per_server,
        ),
        conditional=w.field(section, path, "conditional", w.conditional, u.conditional),
        trust_ad=w.field(section, path, "trust_ad", w.boolean, u.trust_ad),
    )
    per_server = _below(
        w, section, path, ("max_outstanding_per_server", "max_outstanding"),
        (upstreams.max_outstanding_per_server, upstreams.max_outstanding), strict=False,
    )  # fmt: skip
    upstreams = replace(upstreams, max_outstanding_per_server=per_server)

    path = "cache"
    section = w.section(top.get(path), path, SECTIONS[path], _notes(path))
    c = base.cache
    cache = CacheConfig(
        max_entries=w.field(
            section, path, "max_entries", w.whole(0, MAX_CACHE_ENTRIES), c.max_entries
        ),
        serve_stale=w.field(section, path, "serve_stale", w.duration, c.serve_stale),
        prefetch=w.field(section, path, "prefetch", w.boolean, c.prefetch),
        min_ttl=w.field(section, path, "min_ttl", w.ttl, c.min_ttl),
        max_ttl=w.field(section, path, "max_ttl", w.ttl, c.max_ttl),
        negative_max_ttl=w.field(section, path, "negative_max_ttl", w.ttl, c.negative_max_ttl),
    )
    if cache.min_ttl > cache.max_ttl:
        node = section.get("min_ttl") or section["max_ttl"]
        key = "min_ttl" if "min_ttl" in section else "max_ttl"
        message = f"min_ttl ({cache.min_ttl}s) is more than max_ttl ({cache.max_ttl}s)"
        w.problem(node, join(path, key), message)

    path = "log"
    section = w.section(top.get(path), path, SECTIONS[path], _notes(path))
    lg = base.log
    log = LogConfig(
        database=w.field(section, path, "database", w.database, lg.database),
        retention=w.field(section, path, "retention", w.positive, lg.retention),
        log_allowed=w.field(section, path, "log_allowed", w.boolean, lg.log_allowed),
        anonymize_clients=w.field(
            section, path, "anonymize_clients", w.boolean, lg.anonymize_clients
        ),
    )

    path = "lists"
    section = w.section(top.get(path), path, SECTIONS[path], _notes(path))
    ls = base.lists
    lists = ListsConfig(
        refresh=w.field(section, path, "refresh", w.duration, ls.refresh),
        cache_dir=w.field(section, path, "cache_dir", w.database, ls.cache_dir),
        timeout=w.field(section, path, "timeout", w.positive, ls.timeout),
        max_megabytes=w.field(section, path, "max_megabytes", w.whole(1, 4096), ls.max_megabytes),
        download_defaults=w.field(
            section, path, "download_defaults", w.boolean, ls.download_defaults
        ),
        max_shrink=w.field(section, path, "max_shrink", w.percent, ls.max_shrink),
    )
    categories = w.categories(top["categories"], "categories") if "categories" in top else None

    path = "blocking"
    section = w.section(top.get(path), path, SECTIONS[path], _notes(path))
    bl = base.blocking
    blocking = BlockingConfig(
        response=w.field(section, path, "response", w.response, bl.response),
        custom_ips=w.field(section, path, "custom_ips", w.addresses, bl.custom_ips),
        ttl=w.field(section, path, "ttl", w.ttl, bl.ttl),
        bypass_protection=w.field(
            section, path, "bypass_protection", w.boolean, bl.bypass_protection
        ),
        cname_inspection=w.field(section, path, "cname_inspection", w.boolean, bl.cname_inspection),
        rebinding_protection=w.field(
            section, path, "rebinding_protection", w.boolean, bl.rebinding_protection
        ),
        rebinding_allow=w.field(section, path, "rebinding_allow", w.domains, bl.rebinding_allow),
    )
    where = section.get("response") or section.get("custom_ips")
    if blocking.response == "custom" and not blocking.custom_ips and where is not None:
        message = (
            "custom needs blocking.custom_ips: the addresses of a block page, "
            "e.g. custom_ips: [192.168.1.2]"
        )
        w.problem(where, join(path, "response" if "response" in section else "custom_ips"), message)

    config = Config(
        server,
        upstreams,
        cache,
        log,
        lists,
        categories or base.categories,
        source=source,
        blocking=blocking,
    )
    path = "report"
    section = w.section(top.get(path), path, SECTIONS[path], _notes(path))
    rp = base.report
    report = ReportConfig(
        lang=w.field(section, path, "lang", w.language, rp.lang),
        footer=w.field(section, path, "footer", w.footer, rp.footer),
    )
    config = _policy(w, top, base, replace(config, report=report))
    if "alerts" in top:
        config = replace(config, alerts=w.alerts(top["alerts"], "alerts"))
    return replace(config, given=_given(top))


def _below(
    w: _ConfigWalker,
    section: Mapping[str, Node],
    path: str,
    keys: tuple[str, str],
    values: tuple[int, int],
    *,
    strict: bool,
) -> int:
    """A per-client or per-server cap kept within its global cap (`strict`: below it, unless the
    global cap is 1). Left at its default, it follows a smaller global cap down; set in the file
    above it, it is a problem."""
    (key, whole_key), (part, whole) = keys, values
    most = max(1, whole - 1) if strict else whole
    if part <= most:
        return part
    node = section.get(key)
    if node is None:
        return most
    if strict:
        message = (
            f"{part} must be less than {path}.{whole_key} ({whole}), or one client could "
            "hold every connection"
        )
    else:
        message = f"{part} must be at most {path}.{whole_key} ({whole})"
    w.problem(node, join(path, key), message)
    return most


def _given(top: Mapping[str, Node]) -> tuple[str, ...]:
    """The top-level keys given a value, and `section.key` for the keys inside the sections."""
    given = [key for key, node in top.items() if not _is_empty(node)]
    for name in SECTIONS:
        node = top.get(name)
        if isinstance(node, MappingNode):
            given += [
                f"{name}.{key.value}"
                for key, value in node.value
                if isinstance(key, ScalarNode) and not _is_empty(value)
            ]
    return tuple(given)


def _is_empty(node: Node | None) -> bool:
    """True for no value at all: absent, null, `{}` or `[]`."""
    if node is None or is_null(node):
        return True
    return isinstance(node, MappingNode | SequenceNode) and not node.value


def _optional(
    w: _ConfigWalker,
    section: Mapping[str, Node],
    *,
    path: str,
    key: str,
    read: Callable[[Node, str], T | None],
    default: T | None,
) -> T | None:
    """Like `Walker.field`, but an explicit null (`key: null`, `key:`) is None."""
    node = section.get(key)
    if node is not None and is_null(node):
        return None
    return w.field(section, path, key, read, default)


def _names_in(node: Node | None) -> list[str]:
    """The keys of a mapping node (none for anything else)."""
    if not isinstance(node, MappingNode):
        return []
    return [k.value for k, _ in node.value if isinstance(k, ScalarNode) and not is_null(k)]


def _policy(w: _ConfigWalker, top: Mapping[str, Node], base: Config, config: Config) -> Config:
    """`config` with age_bands, profiles, calendars, clients and default_profile, cross-checked."""
    # Categories: the shipped ones, the base's and those named under `categories:` (even when
    # their sources have problems, so a reference to them is not a second problem).
    extra = [name for name, _ in base.categories]
    extra += [name for name in _names_in(top.get("categories")) if _CATEGORY.fullmatch(name)]
    w.known_categories = tuple(dict.fromkeys((*DEFAULT_CATEGORIES, *extra)))

    calendars = base.calendars
    if "calendars" in top:
        calendars = w.calendars(top["calendars"], "calendars") or ()
        w.calendar_names = tuple(_names_in(top["calendars"]))
    w.known_calendars = calendars

    age_bands = tuple(w.age_bands(top.get("age_bands"), "age_bands", base.age_bands))

    profiles = base.profiles
    names = [p.name for p in profiles]
    node = top.get("profiles")
    defined = (
        node is not None
        and not is_null(node)
        and not (isinstance(node, MappingNode) and not node.value)
    )
    if defined:
        found, names = w.profiles(node, "profiles")
        # The embedded profiles stay (the household default among them) unless redefined.
        kept = [p for p in base.profiles if p.name not in names]
        profiles = (*found, *kept)
        names += [p.name for p in kept]
    choices = ", ".join(names)

    clients = base.clients
    if "clients" in top:
        clients = w.clients(top["clients"], "clients", names)

    default_profile = base.default_profile
    if "default_profile" in top:
        node = top["default_profile"]
        text = w.text(node, "default_profile", "a profile name")
        text = None if text is None else unicodedata.normalize("NFC", text.strip())
        if text is not None and text not in names:
            w.problem(
                node, "default_profile", f"{show(text)} is not a profile; profiles: {choices}"
            )
        elif text is not None:
            default_profile = text
    return replace(
        config,
        age_bands=age_bands,
        profiles=profiles,
        calendars=calendars,
        clients=clients,
        default_profile=default_profile,
    )


# Entry points


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
    if _is_empty(root) or _only_null_keys(root):
        raise ConfigError([Problem("", _no_settings(text, root))], source)
    walker = _ConfigWalker(base_dir)
    base = default_config() if defaults is None else defaults
    config = _build(walker, root, base, source)
    if walker.problems:
        raise ConfigError(walker.in_file_order(), source)
    return replace(config, text=text)


def _only_null_keys(root: Node | None) -> bool:
    """True for a mapping whose every value is null: `server:` and nothing under it."""
    return isinstance(root, MappingNode) and all(is_null(value) for _, value in root.value)


def _no_settings(text: str, root: Node | None) -> str:
    """Why a file without a single setting is refused, and what to do instead.

    An empty file (or one cut right after its first key) is far more often a write cut short (a
    full disk, a crash, an editor that truncated before writing) than a wish to drop every rule,
    so it is never taken to mean "the defaults": every child would silently fall to the default
    profile.
    """
    if isinstance(root, MappingNode) and root.value:
        keys = ", ".join(_names_in(root))
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


@functools.cache
def _embedded() -> Config:
    """`default.yaml` read on top of empty lists (it sets every key); database left relative."""
    text = resources.files("filterdns.config").joinpath("default.yaml").read_text(encoding="utf-8")
    bare = Config(ServerConfig(listen=(), allow_clients=()), UpstreamsConfig(servers=()))
    return load_config_text(text, source="filterdns/default.yaml", defaults=bare)


def default_config(is_root: bool | None = None, state_dir: Path | None = None) -> Config:
    """The embedded defaults (`default.yaml`), adjusted to who runs the proxy.

    Not root: listen on 127.0.0.1:5353 and [::1]:5353; root: 0.0.0.0:53 and [::]:53. The log
    database lives in `state_dir`, else $FILTERDNS_STATE_DIR, else /var/lib/filterdns for root,
    else ./state. Nothing is created here.
    """
    if is_root is None:
        is_root = os.geteuid() == 0
    if state_dir is None:
        from_env = os.environ.get(STATE_DIR_ENV)
        state_dir = Path(from_env) if from_env else ROOT_STATE_DIR if is_root else USER_STATE_DIR
    embedded = _embedded()
    server = replace(embedded.server, listen=ROOT_LISTEN) if is_root else embedded.server
    log = replace(embedded.log, database=Path(state_dir) / embedded.log.database)
    lists = replace(embedded.lists, cache_dir=Path(state_dir) / embedded.lists.cache_dir)
    return replace(embedded, server=server, log=log, lists=lists, source=None, given=(), text=None)
