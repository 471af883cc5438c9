"""The configuration: parsed once from YAML into frozen dataclasses, every problem reported.

`load_config(path)` / `load_config_text(text, source)` return a Config or raise ConfigError
listing every problem with its YAML path and line number. Unknown keys are rejected and wrong
choices name the valid ones. Components receive their own section (ServerConfig, ...), never
the whole Config. pyyaml is imported here only.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

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
class Config:
    """The whole configuration; `source` is the file it came from (None for embedded defaults)."""

    server: ServerConfig
    upstreams: UpstreamsConfig
    cache: CacheConfig = field(default_factory=CacheConfig)
    log: LogConfig = field(default_factory=LogConfig)
    source: str | None = None
