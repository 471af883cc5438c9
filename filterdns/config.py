"""The configuration: parsed once from YAML into frozen dataclasses, every problem reported.

`load_config(path)` / `load_config_text(text, source)` return a Config or raise ConfigError
listing every problem with its YAML path and line number. Unknown keys are rejected and wrong
choices name the valid ones. Components receive their own section (ServerConfig, ...), never
the whole Config. Missing keys take the embedded defaults (`default.yaml`, see `default_config`).
pyyaml is imported here and in `configschema` (the node walking) only.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import TypeVar

from yaml.nodes import Node

from filterdns.configschema import Walker, compose, join, line_of, show
from filterdns.errors import ConfigError, Problem
from filterdns.names import normalize_name

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

STRATEGIES = ("failover", "round_robin", "fastest")
UPSTREAM_SCHEMES = ("udp", "tcp", "tls")
DEFAULT_PORTS = {"udp": 53, "tcp": 53, "tls": 853}


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """One address to serve on over UDP and TCP; port 0 asks the system for a free port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class UpstreamServer:
    """One upstream resolver: `udp://9.9.9.9:53`, `tcp://...`, `tls://1.1.1.1#cloudflare-dns.com`."""

    scheme: str
    host: str
    port: int
    sni: str | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        sni = f"#{self.sni}" if self.sni else ""
        prefix = "" if self.scheme == "udp" else f"{self.scheme}://"
        return f"{prefix}{host}:{self.port}{sni}"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """`server:` where and to whom the proxy answers."""

    listen: tuple[ListenAddress, ...]
    allow_clients: tuple[IPNetwork, ...]
    tcp_idle_timeout: float = 10.0
    max_tcp_connections: int = 256
    shutdown_grace: float = 5.0


@dataclass(frozen=True, slots=True)
class UpstreamsConfig:
    """`upstreams:` the resolvers the proxy forwards to."""

    servers: tuple[UpstreamServer, ...]
    strategy: str = "failover"
    timeout: float = 2.0
    backoff: float = 30.0
    conditional: tuple[tuple[str, tuple[UpstreamServer, ...]], ...] = ()


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
}
# `categories:` maps names of the user's choosing, so its keys are not fixed like a section's.
TOP_LEVEL = (*SECTIONS, "categories")
# The categories shipped in filterdns/blocklists (lists.shipped keeps the same tuple).
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
# Keys of the product's configuration that later versions will read; named in the message.
PLANNED: dict[str, tuple[str, ...]] = {
    "": (
        "age_bands",
        "profiles",
        "calendars",
        "clients",
        "default_profile",
        "blocking",
        "alerts",
    ),
    "server": ("rate_limit", "timezone"),
}

MAX_CONNECTIONS = 1_000_000
MAX_CACHE_ENTRIES = 100_000_000

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
T = TypeVar("T")


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
    """`9.9.9.9`, `1.1.1.1:53`, `[2620:fe::fe]:53`, `tcp://8.8.8.8`, `tls://1.1.1.1#name`.

    Without a scheme the server is asked over UDP. Ports default to DEFAULT_PORTS. Raises
    ValueError with a message for the user.
    """
    spec = text.strip()
    scheme = "udp"
    if "://" in spec:
        scheme, spec = spec.split("://", 1)
        scheme = scheme.lower()
        if scheme == "https":
            raise ValueError("DNS over HTTPS is not supported yet; use tls://")
        if scheme not in UPSTREAM_SCHEMES:
            raise ValueError(f"unknown scheme {show(scheme + '://')}; use udp://, tcp:// or tls://")
    spec, has_name, sni = spec.partition("#")
    if has_name and scheme != "tls":
        raise ValueError(f"only tls:// takes a server name after '#', not {scheme}://")
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


def parse_network(text: str) -> IPNetwork:
    """An address (`::1`, a /32 or /128) or a network (`192.168.0.0/16`; host bits ignored)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(
            f"{show(text)} is not an IP address or network like 192.168.0.0/16 or fe80::/10"
        ) from None


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
    notes.update(
        {key: "planned, not supported by this version yet" for key in PLANNED.get(here, ())}
    )
    return notes


class _ConfigWalker(Walker):
    """The readers for this configuration's own value types."""

    def __init__(self, base_dir: Path | None) -> None:
        super().__init__()
        self.base_dir = base_dir

    def parsed(
        self, node: Node, path: str, what: str, parse: Callable[[str], T], empty: str
    ) -> tuple[T, ...] | None:
        """A list of strings each read by `parse`; repeats and an empty list are problems."""
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
        if good and not values:
            self.problem(node, path, empty)
        return tuple(values) if good and values else None

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

    def strategy(self, node: Node, path: str) -> str | None:
        return self.choice(node, path, STRATEGIES)


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
        shutdown_grace=w.field(section, path, "shutdown_grace", w.duration, b.shutdown_grace),
    )

    path = "upstreams"
    section = w.section(top.get(path), path, SECTIONS[path], _notes(path))
    u = base.upstreams
    upstreams = UpstreamsConfig(
        servers=w.field(section, path, "servers", w.servers, u.servers),
        strategy=w.field(section, path, "strategy", w.strategy, u.strategy),
        timeout=w.field(section, path, "timeout", w.positive, u.timeout),
        backoff=w.field(section, path, "backoff", w.duration, u.backoff),
        conditional=w.field(section, path, "conditional", w.conditional, u.conditional),
    )

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
    )
    categories = w.categories(top["categories"], "categories") if "categories" in top else None
    return Config(
        server, upstreams, cache, log, lists, categories or base.categories, source=source
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
    walker = _ConfigWalker(base_dir)
    base = default_config() if defaults is None else defaults
    config = _build(walker, root, base, source)
    if walker.problems:
        raise ConfigError(walker.in_file_order(), source)
    return config


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
    text = resources.files("filterdns").joinpath("default.yaml").read_text(encoding="utf-8")
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
    return replace(embedded, server=server, log=log, lists=lists, source=None)
