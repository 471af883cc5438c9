"""`server:` where and to whom the proxy answers: listeners, the ACL, TCP limits, rate limits,
the time zone of schedules, the user to run as, the metrics endpoint, the name of this
instance in rows it shares with others (`instance`) and the number of serving processes
(`workers`)."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from filterdns.config.fragments import LISTEN_PATTERN, NETWORK_PATTERN, list_of, string
from filterdns.config.readers import (
    ConfigReader,
    Key,
    Section,
    duration_key,
    read_keys,
    whole_key,
)
from filterdns.config.values import IPNetwork, ListenAddress, parse_listen, parse_network
from filterdns.config.walker import Node, is_mapping, is_null, scalar_text, show

MAX_CONNECTIONS = 1_000_000
MAX_RATE = 1_000_000
MAX_WORKERS = 64  # processes a `server.workers` number may ask for
AUTO_WORKERS = 8  # `workers: auto` takes the usable CPUs, at most this many
# Not root: a port anyone may bind, on loopback only. Root: port 53 on every address.
USER_LISTEN = (ListenAddress("127.0.0.1", 5353), ListenAddress("::1", 5353))
ROOT_LISTEN = (ListenAddress("0.0.0.0", 53), ListenAddress("::", 53))
# Loopback, private (RFC 1918, RFC 4193), carrier-grade NAT and link-local networks; never the
# whole internet.
INSTANCE_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
INSTANCE_RULE = "1 to 64 letters, digits, '.', '-' or '_'"
LOCAL_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(network)
    for network in (
        "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
        "100.64.0.0/10", "169.254.0.0/16", "fc00::/7", "fe80::/10",
    )
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`server.rate_limit`: queries a second each client address may ask, and at once."""

    per_client_qps: int = 50
    burst: int = 200


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """`server:` where and to whom the proxy answers."""

    listen: tuple[ListenAddress, ...] = USER_LISTEN  # as root: ROOT_LISTEN (default_config)
    allow_clients: tuple[IPNetwork, ...] = LOCAL_NETWORKS
    tcp_idle_timeout: float = 10.0
    max_tcp_connections: int = 256
    # Below max_tcp_connections, so one address never holds every TCP connection.
    max_tcp_connections_per_client: int = 16
    shutdown_grace: float = 5.0
    timezone: str | None = None  # IANA zone of schedules; None: the system's (system_timezone)
    user: str | None = None  # started as root without systemd: run as this user after binding
    metrics: ListenAddress | None = None  # where Prometheus scrapes /metrics; None: off
    rate_limit: RateLimit | None = RateLimit()  # None: no limit
    instance: str | None = None  # this instance in shared rows; None: the host name
    workers: int | Literal["auto"] = 1  # DNS serving processes; 1: this one (app.workers)

    def instance_name(self) -> str:
        """This instance's name in rows shared with others: `instance`, else the host name."""
        return self.instance if self.instance is not None else host_name()

    def worker_count(self) -> int:
        """The DNS serving processes `workers` asks for (`auto`: the usable CPUs, at most 8)."""
        if self.workers != "auto":
            return self.workers
        return max(1, min(AUTO_WORKERS, len(os.sched_getaffinity(0))))


def host_name() -> str:
    """This machine's host name as an instance name (its first label kept when too long)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())
    if len(name) > 64:
        name = name.split(".", 1)[0][:64]
    return name or "filterdns"


def parse_instance(text: str) -> str:
    """An instance name; ValueError saying the rule."""
    name = text.strip()
    if re.fullmatch(INSTANCE_PATTERN[1:-1], name) is None:
        raise ValueError(f"{show(text)} is not an instance name ({INSTANCE_RULE})")
    return name


RATE_LIMIT: tuple[Key[Any], ...] = (
    whole_key("per_client_qps", 1, MAX_RATE, "Average queries a second"),
    whole_key("burst", 1, MAX_RATE, "Queries at once before the average applies"),
)
RATE_LIMIT_KEYS = tuple(key.name for key in RATE_LIMIT)


def _listen(r: ConfigReader, node: Node, path: str) -> tuple[ListenAddress, ...] | None:
    empty = "needs at least one address to listen on"
    return r.parsed(node, path, "addresses", parse_listen, empty)


def _networks(r: ConfigReader, node: Node, path: str) -> tuple[IPNetwork, ...] | None:
    empty = "is empty, so every client would be refused; list the networks that may ask"
    return r.parsed(node, path, "addresses or networks", parse_network, empty)


def _metrics(r: ConfigReader, node: Node, path: str) -> ListenAddress | None:
    return r.one(node, path, "an address and port like 127.0.0.1:9153", parse_listen)


def _instance(r: ConfigReader, node: Node, path: str) -> str | None:
    return r.one(node, path, "an instance name", parse_instance)


def _workers(r: ConfigReader, node: Node, path: str) -> int | Literal["auto"] | None:
    """A number of processes, or `auto`."""
    text = scalar_text(node)
    if text == "auto":
        return "auto"
    digits = (text or "").strip().lstrip("+-").replace("_", "")
    if text is not None and text.strip() and not is_null(node) and not digits.isdigit():
        r.problem(node, path, f"{show(text)} is neither a whole number nor auto")
        return None
    return r.integer(node, path, 1, MAX_WORKERS)


def _rate_limit(r: ConfigReader, node: Node, path: str) -> RateLimit | None:
    """`{per_client_qps: 50, burst: 200}`; the key left out keeps its default."""
    found = r.section(node, path, RATE_LIMIT_KEYS)
    if not is_mapping(node):
        return None
    return RateLimit(**read_keys(r, found, path, RATE_LIMIT, RateLimit()))


def _check(r: ConfigReader, found: Mapping[str, Node], server: ServerConfig) -> ServerConfig:
    """The per-client TCP cap stays below the global one."""
    keys = ("max_tcp_connections_per_client", "max_tcp_connections")
    caps = (server.max_tcp_connections_per_client, server.max_tcp_connections)
    per_client = r.below(found, "server", keys, caps, strict=True)
    return replace(server, max_tcp_connections_per_client=per_client)


SECTION = Section(
    "server",
    ServerConfig,
    "Where and to whom the proxy answers",
    (
        Key("listen", _listen, list_of(
            string("An address to listen on", LISTEN_PATTERN),
            'Addresses to answer on over UDP and TCP: "IPv4:port", "[IPv6]:port", or an address '
            "alone for port 53; port 0 picks a free port. As root the default is 0.0.0.0:53 and "
            "[::]:53",
        )),
        Key("allow_clients", _networks, list_of(
            string("An address or network", NETWORK_PATTERN),
            "Who may ask: addresses or networks (CIDR); everyone else gets REFUSED over TCP and "
            "no answer over UDP",
        )),
        duration_key("tcp_idle_timeout", "A TCP client connection with no query for this long "
                     "is closed", positive=True),
        whole_key("max_tcp_connections", 1, MAX_CONNECTIONS,
                  "At most this many TCP client connections"),
        whole_key("max_tcp_connections_per_client", 1, MAX_CONNECTIONS,
                  "At most this many TCP connections from one client address; less than "
                  "max_tcp_connections"),
        duration_key("shutdown_grace", "On SIGTERM or Ctrl-C, queries in flight get this long"),
        Key("timezone", ConfigReader.timezone, {
            "description": "The IANA time zone schedules are read in, e.g. Europe/Berlin; "
            "null: the system's",
            "type": ["string", "null"],
            "examples": ["Europe/Berlin", "America/New_York", "Asia/Ho_Chi_Minh"],
        }, nullable=True),
        Key("user", ConfigReader.text, {
            "description": "Started as root without systemd: the user to run as after binding; "
            "null: stay as started",
            "type": ["string", "null"],
            "examples": ["filterdns", "nobody"],
        }, nullable=True),
        Key("metrics", _metrics, {
            "description": "Where Prometheus scrapes /metrics, e.g. 127.0.0.1:9153; null: off",
            "type": ["string", "null"],
            "examples": ["127.0.0.1:9153"],
        }, nullable=True),
        Key("rate_limit", _rate_limit, {
            "description": "Queries a second each client address may ask (on average, and at "
            "once); over it UDP is dropped and TCP refused; null: no limit",
            "type": ["object", "null"],
            "additionalProperties": False,
            "properties": {key.name: key.schema for key in RATE_LIMIT},
        }, nullable=True),
        Key("instance", _instance, {
            "description": "This instance's name in the rows it shares with others (a "
            f"PostgreSQL log.database): {INSTANCE_RULE}; null: the host name",
            "type": ["string", "null"],
            "pattern": INSTANCE_PATTERN,
            "examples": ["school-12", "pi-kitchen"],
        }, nullable=True),
        Key("workers", _workers, {
            "description": "DNS serving processes on the same ports (SO_REUSEPORT): 1 serves "
            "in this process; a number or auto (the usable CPUs, at most "
            f"{AUTO_WORKERS}) starts that many, the log, the web app and reloads staying in "
            "the first (/metrics adds up the workers' counts)",
            "oneOf": [
                {"type": "integer", "minimum": 1, "maximum": MAX_WORKERS},
                {"const": "auto"},
            ],
            "examples": [1, 4, "auto"],
        }),
    ),
    _check,
)  # fmt: skip
