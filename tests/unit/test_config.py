"""The configuration loader: defaults, every value type and its message, every problem's line."""

from __future__ import annotations

import ipaddress
import os
import re
import textwrap
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from importlib import resources
from operator import attrgetter
from pathlib import Path
from typing import Literal

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yaml.nodes import MappingNode

from filterdns.config import (
    ALWAYS_BLOCKED,
    BAND_KEYS,
    BANDS,
    BLOCK_RESPONSES,
    CLIENT_KEYS,
    PROFILE_KEYS,
    SCHEDULE_KEYS,
    SECTIONS,
    TOP_LEVEL,
    YOUTUBE_LEVELS,
    BandConfig,
    BlockingConfig,
    BlockResponse,
    CacheConfig,
    ClientConfig,
    Config,
    ListenAddress,
    LogConfig,
    ProfileConfig,
    RateLimit,
    ScheduleRule,
    ServerConfig,
    UpstreamsConfig,
    UpstreamServer,
    default_config,
    find_config,
    load_config,
    load_config_text,
    parse_upstream,
)
from filterdns.config import loader as config_module
from filterdns.config.walker import compose
from filterdns.errors import ConfigError, Problem
from filterdns.policy.schedule import Calendar
from filterdns.policy.timezones import parse_timezone, system_timezone

REPO = Path(__file__).resolve().parents[2]
STATE = Path("/srv/filterdns-state")
DEFAULTS = default_config(is_root=False, state_dir=STATE)
DEFAULT_YAML = (
    resources.files("filterdns.config").joinpath("default.yaml").read_text(encoding="utf-8")
)


def sut(text: str, base_dir: Path | None = None) -> Config:
    """The unit under test: `load_config_text` on dedented YAML, over fixed non-root defaults."""
    return load_config_text(
        textwrap.dedent(text), source="<test>", base_dir=base_dir, defaults=DEFAULTS
    )


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        sut(text)
    assert caught.value.source == "<test>"
    return caught.value.problems


def the_problem(text: str) -> Problem:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


def udp(host: str, port: int = 53) -> UpstreamServer:
    return UpstreamServer("udp", host, port)


def net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


# Defaults


@pytest.fixture
def no_state_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FILTERDNS_STATE_DIR", raising=False)


@pytest.mark.usefixtures("no_state_env")
def test_defaults_for_a_normal_user() -> None:
    config = default_config(is_root=False)
    assert config.source is None
    assert [str(a) for a in config.server.listen] == ["127.0.0.1:5353", "[::1]:5353"]
    assert config.upstreams.servers == (udp("9.9.9.9"), udp("149.112.112.112"))
    assert config.upstreams.strategy == "failover"
    assert config.upstreams.conditional == ()
    assert config.log.database == Path("state/filterdns.db")


@pytest.mark.usefixtures("no_state_env")
def test_defaults_for_root() -> None:
    config = default_config(is_root=True)
    assert [str(a) for a in config.server.listen] == ["0.0.0.0:53", "[::]:53"]
    assert config.log.database == Path("/var/lib/filterdns/filterdns.db")
    assert config.upstreams == default_config(is_root=False).upstreams


def test_default_clients_are_local_networks_only() -> None:
    allowed = DEFAULTS.server.allow_clients
    assert allowed == tuple(
        net(n)
        for n in (
            "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
            "100.64.0.0/10", "169.254.0.0/16", "fc00::/7", "fe80::/10",
        )
    )  # fmt: skip
    assert not any(ipaddress.ip_address("8.8.8.8") in n for n in allowed)
    assert not any(ipaddress.ip_address("2001:db8::1") in n for n in allowed)


@pytest.mark.parametrize(
    ("is_root", "env", "argument", "database"),
    [
        pytest.param(False, None, None, "state/filterdns.db", id="user-cwd-state"),
        pytest.param(True, None, None, "/var/lib/filterdns/filterdns.db", id="root-var-lib"),
        pytest.param(False, "/data/fd", None, "/data/fd/filterdns.db", id="user-env"),
        pytest.param(True, "/data/fd", None, "/data/fd/filterdns.db", id="root-env"),
        pytest.param(False, "", None, "state/filterdns.db", id="empty-env-ignored"),
        pytest.param(True, "/data/fd", Path("/opt/s"), "/opt/s/filterdns.db", id="argument-wins"),
    ],
)
def test_default_database_follows_the_state_dir(
    monkeypatch: pytest.MonkeyPatch,
    is_root: bool,
    env: str | None,
    argument: Path | None,
    database: str,
) -> None:
    if env is None:
        monkeypatch.delenv("FILTERDNS_STATE_DIR", raising=False)
    else:
        monkeypatch.setenv("FILTERDNS_STATE_DIR", env)
    assert default_config(is_root=is_root, state_dir=argument).log.database == Path(database)


@pytest.mark.usefixtures("no_state_env")
@pytest.mark.parametrize(("euid", "port"), [(0, 53), (1000, 5353)], ids=["root", "user"])
def test_is_root_defaults_to_the_effective_uid(
    monkeypatch: pytest.MonkeyPatch, euid: int, port: int
) -> None:
    monkeypatch.setattr(config_module.os, "geteuid", lambda: euid)
    assert {a.port for a in default_config().server.listen} == {port}


def test_default_config_creates_no_directory(tmp_path: Path) -> None:
    default_config(is_root=False, state_dir=tmp_path / "state")
    assert not (tmp_path / "state").exists()


def keys_of(text: str) -> dict[str, tuple[str, ...]]:
    """The keys set in each top-level mapping of a YAML document, in file order (() for a list
    or a single value)."""
    root, syntax = compose(text)
    assert syntax is None and root is not None, syntax
    return {
        section.value: tuple(key.value for key, _ in value.value)
        if isinstance(value, MappingNode)
        else ()
        for section, value in root.value
    }


def test_default_yaml_sets_every_key() -> None:
    keys = keys_of(DEFAULT_YAML)
    assert set(keys) == set(TOP_LEVEL)
    assert {name: keys[name] for name in SECTIONS} == SECTIONS
    assert keys["profiles"] == ("household",)


def test_default_yaml_loaded_as_a_file_is_default_config(tmp_path: Path) -> None:
    defaults = default_config(is_root=False, state_dir=tmp_path)
    loaded = load_config_text(DEFAULT_YAML, base_dir=tmp_path, defaults=defaults)
    assert loaded == replace(defaults, source="<config>")


def test_dataclass_defaults_agree_with_default_yaml() -> None:
    server, upstreams, log = DEFAULTS.server, DEFAULTS.upstreams, DEFAULTS.log
    assert ServerConfig(listen=server.listen, allow_clients=server.allow_clients) == server
    assert UpstreamsConfig(servers=upstreams.servers) == upstreams
    assert CacheConfig() == DEFAULTS.cache
    assert LogConfig(database=log.database) == log


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("cache: {}\nlog: {}\n", id="empty-mappings"),
        pytest.param("server:\n  timezone:\ncache: {}\n", id="empty-keys"),
    ],
)
def test_empty_sections_are_the_defaults(text: str) -> None:
    assert sut(text) == replace(DEFAULTS, source="<test>")


@pytest.mark.parametrize(
    ("text", "what"),
    [
        pytest.param("", "is empty (0 bytes)", id="empty"),
        pytest.param("\n\n\n", "holds no settings (3 bytes of blank space)", id="blank"),
        pytest.param("# nothing but a comment\n\n", "holds no settings (only comments)",
                     id="comment"),
        pytest.param("---\n", "holds no settings (an empty document)", id="document-start"),
        pytest.param("~\n", "holds no settings (an empty document)", id="null"),
        pytest.param("{}\n", "holds no settings (an empty document)", id="empty-mapping"),
        pytest.param("server:\nupstreams:\n",
                     "holds no settings (only keys without a value: server, upstreams)",
                     id="cut-after-the-first-keys"),
    ],
)  # fmt: skip
def test_a_file_without_settings_is_never_taken_for_the_defaults(text: str, what: str) -> None:
    problem = the_problem(text)
    assert problem.path == ""
    assert problem.message == (
        f"the file {what}; it is never applied. Write the configuration back, or delete the "
        "file to run on the embedded defaults"
    )


def test_an_emptied_file_on_disk_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.source == str(path)
    assert "is empty (0 bytes)" in str(caught.value)


def test_a_loaded_file_keeps_its_text_and_the_keys_it_gives() -> None:
    text = "cache: {max_entries: 10}\nserver:\n  timezone:\nlog: {}\nupstreams:\nclients: []\n"
    config = sut(text)
    assert config.text == text
    assert config.given == ("cache", "server", "cache.max_entries")
    assert DEFAULTS.given == () and DEFAULTS.text is None


@pytest.mark.usefixtures("no_state_env")
def test_missing_keys_take_default_config_when_no_defaults_are_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(config_module.os, "geteuid", lambda: 1000)
    assert load_config_text("cache: {}\n") == replace(default_config(), source="<config>")


def test_missing_keys_keep_their_defaults_next_to_given_ones() -> None:
    config = sut("cache: {max_entries: 10}\nupstreams: {strategy: fastest}\n")
    assert config.cache == replace(DEFAULTS.cache, max_entries=10)
    assert config.upstreams == replace(DEFAULTS.upstreams, strategy="fastest")
    assert config.server == DEFAULTS.server


# Values of every type


@pytest.mark.parametrize(
    ("text", "attribute", "expected"),
    [
        pytest.param(
            "server: {tcp_idle_timeout: 500ms}", "server.tcp_idle_timeout", 0.5, id="duration-ms"
        ),
        pytest.param(
            "server: {tcp_idle_timeout: 10}",
            "server.tcp_idle_timeout",
            10.0,
            id="duration-bare-int",
        ),
        pytest.param(
            "server: {tcp_idle_timeout: 1.5}",
            "server.tcp_idle_timeout",
            1.5,
            id="duration-bare-float",
        ),
        pytest.param(
            "server: {shutdown_grace: 0}", "server.shutdown_grace", 0.0, id="duration-zero"
        ),
        pytest.param("upstreams: {timeout: 10s}", "upstreams.timeout", 10.0, id="duration-s"),
        pytest.param("upstreams: {backoff: 5m}", "upstreams.backoff", 300.0, id="duration-m"),
        pytest.param("cache: {serve_stale: 24h}", "cache.serve_stale", 86400.0, id="duration-h"),
        pytest.param("cache: {serve_stale: 1d}", "cache.serve_stale", 86400.0, id="duration-d"),
        pytest.param("log: {retention: 90d}", "log.retention", 90 * 86400.0, id="duration-90d"),
        pytest.param("log: {retention: 2w}", "log.retention", 14 * 86400.0, id="duration-w"),
        pytest.param(
            "log: {retention: '36500d'}", "log.retention", 36500 * 86400.0, id="duration-quoted-max"
        ),
        pytest.param(
            "server: {max_tcp_connections: 1}", "server.max_tcp_connections", 1, id="int-low"
        ),
        pytest.param("cache: {max_entries: 0}", "cache.max_entries", 0, id="int-zero"),
        pytest.param(
            "cache: {max_entries: 200_000}", "cache.max_entries", 200000, id="int-underscores"
        ),
        pytest.param("cache: {max_entries: '75'}", "cache.max_entries", 75, id="int-quoted"),
        pytest.param("cache: {min_ttl: 30s}", "cache.min_ttl", 30, id="ttl-duration"),
        pytest.param("cache: {max_ttl: 3600}", "cache.max_ttl", 3600, id="ttl-seconds"),
        pytest.param("cache: {negative_max_ttl: 0}", "cache.negative_max_ttl", 0, id="ttl-zero"),
        pytest.param(
            "cache: {min_ttl: 1h, max_ttl: 1h}", "cache.min_ttl", 3600, id="ttl-min-equals-max"
        ),
        pytest.param("cache: {prefetch: false}", "cache.prefetch", False, id="bool-false"),
        pytest.param("log: {log_allowed: true}", "log.log_allowed", True, id="bool-true"),
        pytest.param("log: {}", "log.fold_window", 1.0, id="fold-window-default"),
        pytest.param("log: {fold_window: 0}", "log.fold_window", 0.0, id="fold-window-off"),
        pytest.param("log: {fold_window: 500ms}", "log.fold_window", 0.5, id="fold-window-ms"),
        pytest.param("log: {fold_window: 1m}", "log.fold_window", 60.0, id="fold-window-minute"),
        pytest.param("upstreams: {trust_ad: true}", "upstreams.trust_ad", True, id="trust-ad"),
        pytest.param(
            "log: {anonymize_clients: True}", "log.anonymize_clients", True, id="bool-capital"
        ),
        pytest.param("cache: {prefetch: FALSE}", "cache.prefetch", False, id="bool-upper"),
        pytest.param(
            "upstreams: {strategy: round_robin}",
            "upstreams.strategy",
            "round_robin",
            id="choice-round-robin",
        ),
        pytest.param(
            "upstreams: {strategy: fastest}", "upstreams.strategy", "fastest", id="choice-fastest"
        ),
        pytest.param(
            "log: {database: /data/blocked.db}",
            "log.database",
            Path("/data/blocked.db"),
            id="path-absolute",
        ),
        pytest.param(
            "log: {database: blocked.db}",
            "log.database",
            Path("blocked.db"),
            id="path-relative-no-base",
        ),
        pytest.param('cache: {"max_entries":10}', "cache.max_entries", 10, id="json-style-mapping"),
        pytest.param("server: {workers: 4}", "server.workers", 4, id="workers-number"),
        pytest.param("server: {workers: auto}", "server.workers", "auto", id="workers-auto"),
        pytest.param("server: {}", "server.workers", 1, id="workers-default-one"),
    ],
)
def test_values_are_read(text: str, attribute: str, expected: object) -> None:
    assert attrgetter(attribute)(sut(text)) == expected


DURATION = '"{}" is not a duration like 10s, 5m, 24h or 90d'
TOP_KEYS = (
    "server, upstreams, cache, log, lists, blocking, report, web, categories, age_bands, profiles, "
    "calendars, clients, default_profile, alerts, local_records"
)
SERVER_KEYS = (
    "listen, allow_clients, tcp_idle_timeout, max_tcp_connections, max_tcp_connections_per_client, "
    "shutdown_grace, timezone, user, metrics, rate_limit, instance, workers"
)


@pytest.mark.parametrize(
    ("text", "path", "message", "line"),
    [
        pytest.param(
            "upstreams:\n  strategy: fastes\n",
            "upstreams.strategy",
            '"fastes" is not one of failover, round_robin, fastest',
            2,
            id="choice",
        ),
        pytest.param(
            "upstreams:\n  strategy: Failover\n",
            "upstreams.strategy",
            '"Failover" is not one of failover, round_robin, fastest',
            2,
            id="choice-case",
        ),
        pytest.param(
            "\n\ncache:\n  max_ttl: 1x\n",
            "cache.max_ttl",
            DURATION.format("1x"),
            4,
            id="duration-unit",
        ),
        pytest.param(
            "upstreams:\n  timeout: ten seconds\n",
            "upstreams.timeout",
            DURATION.format("ten seconds"),
            2,
            id="duration-words",
        ),
        pytest.param(
            "upstreams:\n  timeout: true\n",
            "upstreams.timeout",
            DURATION.format("true"),
            2,
            id="duration-bool",
        ),
        pytest.param(
            "upstreams:\n  timeout: 0\n",
            "upstreams.timeout",
            '"0" must be more than 0',
            2,
            id="duration-zero-timeout",
        ),
        pytest.param(
            "server:\n  tcp_idle_timeout: 0s\n",
            "server.tcp_idle_timeout",
            '"0s" must be more than 0',
            2,
            id="duration-zero-idle",
        ),
        pytest.param(
            "log:\n  retention: 0d\n",
            "log.retention",
            '"0d" must be more than 0',
            2,
            id="duration-zero-retention",
        ),
        pytest.param(
            "server:\n  shutdown_grace: -1\n",
            "server.shutdown_grace",
            '"-1" is negative; a duration must be 0 or more',
            2,
            id="duration-negative",
        ),
        pytest.param(
            "cache:\n  serve_stale: 36501d\n",
            "cache.serve_stale",
            '"36501d" is too long; at most 36500d',
            2,
            id="duration-too-long",
        ),
        pytest.param(
            "cache:\n  serve_stale: " + "9" * 400 + "\n",
            "cache.serve_stale",
            f'"{"9" * 400}" is too long; at most 36500d',
            2,
            id="duration-infinite",
        ),
        pytest.param(
            "upstreams:\n  timeout: [1s]\n",
            "upstreams.timeout",
            "expected a duration like 10s, 5m, 24h or 90d, not a list",
            2,
            id="duration-list",
        ),
        pytest.param(
            "upstreams:\n  timeout:\n",
            "upstreams.timeout",
            "has no value; write a duration like 10s, 5m, 24h or 90d or remove the key "
            "to use the default",
            2,
            id="duration-missing",
        ),
        pytest.param(
            "cache:\n  prefetch: yes\n",
            "cache.prefetch",
            '"yes" is not true or false',
            2,
            id="bool-yes",
        ),
        pytest.param(
            "cache:\n  prefetch: 1\n",
            "cache.prefetch",
            '"1" is not true or false',
            2,
            id="bool-one",
        ),
        pytest.param(
            "upstreams:\n  servers: [9.9.9.9]\n  trust_ad: yes\n",
            "upstreams.trust_ad",
            '"yes" is not true or false',
            3,
            id="trust-ad-yes",
        ),
        pytest.param(
            "log:\n  log_allowed: {a: 1}\n",
            "log.log_allowed",
            "expected true or false, not a mapping",
            2,
            id="bool-mapping",
        ),
        pytest.param(
            "cache:\n  max_entries: -1\n",
            "cache.max_entries",
            "-1 must be at least 0",
            2,
            id="int-negative",
        ),
        pytest.param(
            "cache:\n  max_entries: 1.5\n",
            "cache.max_entries",
            '"1.5" is not a whole number',
            2,
            id="int-fraction",
        ),
        pytest.param(
            "cache:\n  max_entries: lots\n",
            "cache.max_entries",
            '"lots" is not a whole number',
            2,
            id="int-word",
        ),
        pytest.param(
            "cache:\n  max_entries: 0x10\n",
            "cache.max_entries",
            '"0x10" is not a whole number',
            2,
            id="int-hex",
        ),
        pytest.param(
            "cache:\n  max_entries: " + "9" * 40 + "\n",
            "cache.max_entries",
            "9" * 40 + " must be at most 100000000",
            2,
            id="int-huge",
        ),
        pytest.param(
            "server:\n  max_tcp_connections: 0\n",
            "server.max_tcp_connections",
            "0 must be at least 1",
            2,
            id="int-no-connections",
        ),
        pytest.param(
            "cache:\n  min_ttl: 1.5s\n",
            "cache.min_ttl",
            '"1.5s" is not a whole number of seconds',
            2,
            id="ttl-fraction",
        ),
        pytest.param(
            "cache:\n  max_ttl: 3000000000\n",
            "cache.max_ttl",
            '"3000000000" is more than the largest TTL, 2147483647s',
            2,
            id="ttl-too-big",
        ),
        pytest.param(
            "cache:\n  min_ttl: 2d\n",
            "cache.min_ttl",
            "min_ttl (172800s) is more than max_ttl (86400s)",
            2,
            id="ttl-min-over-default-max",
        ),
        pytest.param(
            "cache:\n  max_ttl: 30\n  min_ttl: 60\n",
            "cache.min_ttl",
            "min_ttl (60s) is more than max_ttl (30s)",
            3,
            id="ttl-min-over-max",
        ),
        pytest.param(
            "log:\n  database: ''\n",
            "log.database",
            "is empty; expected a file path",
            2,
            id="path-empty",
        ),
        pytest.param(
            "log:\n  database: [a.db]\n",
            "log.database",
            "expected a file path, not a list",
            2,
            id="path-list",
        ),
        pytest.param(
            "log:\n  database: ~no-such-user/x.db\n",
            "log.database",
            '"~no-such-user/x.db": this system has no such user\'s home',
            2,
            id="path-home-of-no-user",
        ),
        pytest.param(
            "server: 5\n",
            "server",
            f"expected a mapping with keys {SERVER_KEYS}, not a single value",
            1,
            id="section-scalar",
        ),
        pytest.param(
            "log:\n  - database\n",
            "log",
            "expected a mapping with keys database, retention, log_allowed, "
            "anonymize_clients, fold_window, not a list",
            2,
            id="section-list",
        ),
        pytest.param(
            "- server\n",
            "",
            f"expected a mapping with keys {TOP_KEYS}, not a list",
            1,
            id="top-level-list",
        ),
        pytest.param(
            "just words\n",
            "",
            f"expected a mapping with keys {TOP_KEYS}, not a single value",
            1,
            id="top-level-scalar",
        ),
        pytest.param(
            "server:\n  [a, b]: 1\n",
            "server",
            "a key must be a name, not a list",
            2,
            id="key-not-a-name",
        ),
        pytest.param(
            "server:\n  rate_limit: {per_client_qps: 0}\n",
            "server.rate_limit.per_client_qps",
            "0 must be at least 1",
            2,
            id="rate-limit-zero",
        ),
        pytest.param(
            "server:\n  rate_limit: 50\n",
            "server.rate_limit",
            "expected a mapping with keys per_client_qps, burst, not a single value",
            2,
            id="rate-limit-not-a-mapping",
        ),
        pytest.param(
            "server:\n  workers: 0\n",
            "server.workers",
            "0 must be at least 1",
            2,
            id="workers-zero",
        ),
        pytest.param(
            "server:\n  workers: 65\n",
            "server.workers",
            "65 must be at most 64",
            2,
            id="workers-too-many",
        ),
        pytest.param(
            "server:\n  workers: all\n",
            "server.workers",
            '"all" is neither a whole number nor auto',
            2,
            id="workers-not-auto",
        ),
        pytest.param(
            "log:\n  fold_window: 7s\n",
            "log.fold_window",
            '"7s" does not divide a minute: 0 (off) or a duration a minute holds a whole number'
            " of, e.g. 500ms, 1s, 5s, 1m",
            2,
            id="fold-window-not-in-a-minute",
        ),
        pytest.param(
            "log:\n  fold_window: 2m\n",
            "log.fold_window",
            '"2m" does not divide a minute: 0 (off) or a duration a minute holds a whole number'
            " of, e.g. 500ms, 1s, 5s, 1m",
            2,
            id="fold-window-longer-than-a-minute",
        ),
    ],
)
def test_bad_values_name_the_problem_and_its_line(
    text: str, path: str, message: str, line: int
) -> None:
    assert the_problem(text) == Problem(path, message, line)


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        pytest.param(
            "server: {max_tcp_connections: 10, max_tcp_connections_per_client: 10}",
            "server.max_tcp_connections_per_client",
            "10 must be less than server.max_tcp_connections (10), or one client could hold "
            "every connection",
            id="per-client-equal-to-global",
        ),
        pytest.param(
            "server: {max_tcp_connections_per_client: 300}",
            "server.max_tcp_connections_per_client",
            "300 must be less than server.max_tcp_connections (256), or one client could hold "
            "every connection",
            id="per-client-above-default-global",
        ),
        pytest.param(
            "upstreams: {max_outstanding: 100, max_outstanding_per_server: 101}",
            "upstreams.max_outstanding_per_server",
            "101 must be at most upstreams.max_outstanding (100)",
            id="per-server-above-global",
        ),
        pytest.param(
            "upstreams: {max_outstanding: 0}",
            "upstreams.max_outstanding",
            "0 must be at least 1",
            id="no-outstanding",
        ),
        pytest.param(
            "upstreams: {max_outstanding_per_server: 70000}",
            "upstreams.max_outstanding_per_server",
            "70000 must be at most 65536",
            id="more-than-one-connection-holds",
        ),
    ],
)
def test_caps_per_client_and_per_server_stay_within_their_global_cap(
    text: str, path: str, message: str
) -> None:
    assert the_problem(text) == Problem(path, message, 1)


@pytest.mark.parametrize(
    ("text", "per_client", "per_server"),
    [
        pytest.param("server: {max_tcp_connections: 4}", 3, 256, id="small-tcp-cap"),
        pytest.param("server: {max_tcp_connections: 1}", 1, 256, id="one-connection"),
        pytest.param("upstreams: {max_outstanding: 100}", 16, 100, id="small-outstanding"),
        pytest.param(
            "server: {max_tcp_connections: 64, max_tcp_connections_per_client: 63}",
            63,
            256,
            id="given-below",
        ),
    ],
)
def test_caps_left_at_their_default_follow_a_smaller_global_cap(
    text: str, per_client: int, per_server: int
) -> None:
    config = sut(text)
    assert config.server.max_tcp_connections_per_client == per_client
    assert config.upstreams.max_outstanding_per_server == per_server


def test_min_ttl_may_not_exceed_a_given_max_ttl() -> None:
    assert the_problem("cache:\n  max_ttl: 5s\n  min_ttl: 10s\n").path == "cache.min_ttl"


# Unknown and duplicate keys

CACHE_KEYS = "max_entries, serve_stale, prefetch, min_ttl, max_ttl, negative_max_ttl"


@pytest.mark.parametrize(
    ("text", "path", "message", "line"),
    [
        pytest.param(
            "cache:\n  max_entries: 1\n  max_entriez: 10\n",
            "cache.max_entriez",
            f"unknown key 'max_entriez'; valid keys: {CACHE_KEYS} (did you mean 'max_entries'?)",
            3,
            id="typo-did-you-mean",
        ),
        pytest.param(
            "log:\n  colour: red\n",
            "log.colour",
            "unknown key 'colour'; valid keys: database, retention, log_allowed, anonymize_clients,"
            " fold_window",
            2,
            id="nothing-close",
        ),
        pytest.param(
            "upstreams:\n  conditonal: {}\n",
            "upstreams.conditonal",
            "unknown key 'conditonal'; valid keys: servers, strategy, timeout, backoff, "
            "max_outstanding, max_outstanding_per_server, conditional, trust_ad (did you mean "
            "'conditional'?)",
            2,
            id="nested-typo",
        ),
        pytest.param(
            "cache:\n  timeout: 3\n",
            "cache.timeout",
            f"unknown key 'timeout'; valid keys: {CACHE_KEYS} "
            "('timeout' belongs under upstreams: or lists:)",
            2,
            id="key-of-another-section",
        ),
        pytest.param(
            "servers: [9.9.9.9]\n",
            "servers",
            f"unknown key 'servers'; valid keys: {TOP_KEYS} "
            "(did you mean 'server'?) ('servers' belongs under upstreams:)",
            1,
            id="top-level-key-of-a-section",
        ),
        pytest.param(
            "server:\n  listen: ['127.0.0.1:53']\n  upstreams: {}\n",
            "server.upstreams",
            f"unknown key 'upstreams'; valid keys: {SERVER_KEYS} ('upstreams' is a "
            "top-level section; check the indentation)",
            3,
            id="indented-section",
        ),
        pytest.param(
            "server:\n  rate_limit: {per_client_qps: 50, brust: 10}\n",
            "server.rate_limit.brust",
            "unknown key 'brust'; valid keys: per_client_qps, burst (did you mean 'burst'?)",
            2,
            id="rate-limit-typo",
        ),
        pytest.param(
            "<<: {cache: {}}\n",
            "<<",
            f"unknown key '<<'; valid keys: {TOP_KEYS}",
            1,
            id="merge-key",
        ),
    ],
)
def test_unknown_keys_name_the_valid_ones(text: str, path: str, message: str, line: int) -> None:
    assert the_problem(text) == Problem(path, message, line)


@pytest.mark.parametrize(
    ("text", "path", "message", "line"),
    [
        pytest.param(
            "cache: {}\nlog: {}\ncache: {}\n",
            "cache",
            "duplicate key 'cache'; it is already set on line 1",
            3,
            id="section",
        ),
        pytest.param(
            "upstreams:\n  timeout: 1s\n  strategy: fastest\n  timeout: 2s\n",
            "upstreams.timeout",
            "duplicate key 'timeout'; it is already set on line 2",
            4,
            id="value",
        ),
        pytest.param(
            "cache: {prefetch: true, prefetch: false}\n",
            "cache.prefetch",
            "duplicate key 'prefetch'; it is already set on line 1",
            1,
            id="flow",
        ),
        pytest.param(
            "upstreams:\n  conditional:\n    lan: 10.0.0.1\n    lan: 10.0.0.2\n",
            "upstreams.conditional.lan",
            "duplicate key 'lan'; it is already set on line 3",
            4,
            id="conditional-same-text",
        ),
        pytest.param(
            "upstreams:\n  conditional:\n    lan: 10.0.0.1\n    LAN.: 10.0.0.2\n",
            "upstreams.conditional.LAN.",
            '"LAN." repeats the suffix on line 3',
            4,
            id="conditional-same-name",
        ),
    ],
)
def test_duplicate_keys_are_problems(text: str, path: str, message: str, line: int) -> None:
    assert the_problem(text) == Problem(path, message, line)


# YAML syntax


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        pytest.param(
            'server:\n  listen: ["127.0.0.1:53"\nupstreams: {}\n',
            3,
            "while parsing a flow sequence, expected ',' or ']'",
            id="unclosed-list",
        ),
        pytest.param("server:\n\tlisten: []\n", 2, "found character '\\t'", id="tab"),
        pytest.param(
            "cache: 1\n max_entries: 2\n",
            2,
            "mapping values are not allowed here",
            id="bad-indentation",
        ),
        pytest.param(
            "server:\n  listen: [::1]:53\n",
            2,
            'quote an IPv6 address with a port: "[::1]:53"',
            id="unquoted-ipv6-port",
        ),
        pytest.param(
            "server:\n  x: \x07\n", 2, "character #x0007 is not allowed", id="control-character"
        ),
        pytest.param(
            "---\ncache: {}\n---\nlog: {}\n", 3, "expected a single document", id="two-documents"
        ),
        pytest.param("cache: *nowhere\n", 1, "found undefined alias 'nowhere'", id="bad-alias"),
        pytest.param(
            'log:\n  database: "x.db\n\n',
            4,
            "found unexpected end of stream",
            id="unterminated-quote",
        ),
    ],
)
def test_a_yaml_syntax_error_is_one_problem_at_its_line(
    text: str, line: int, fragment: str
) -> None:
    problem = the_problem(text)
    assert (problem.path, problem.line) == ("", line)
    assert problem.message.startswith("invalid YAML: ")
    assert fragment in problem.message


def test_deep_nesting_is_a_problem_not_a_crash() -> None:
    problem = the_problem("[" * 5000 + "]" * 5000)
    assert problem.line == 1


# Many problems at once

MANY = """\
server:
  listen: ["127.0.0.1:99999"]
  allow_clients: [10.0.0.0/33]
upstreams:
  servers: ["9.9.9.9", "https://dns.quad9.net/dns-query"]
  strategy: fastes
  conditional:
    home.arpa: 192.168.1.1
    "bad name": 10.0.0.1
cache:
  max_entriez: 10
  prefetch: yes
log:
  retention: 90x
alerts: [{categories: [adult]}]
"""


def test_every_problem_is_listed_in_file_order() -> None:
    found = [(p.path, p.line) for p in problems_of(MANY)]
    assert found == [
        ("server.listen[0]", 2),
        ("server.allow_clients[0]", 3),
        ("upstreams.servers[1]", 5),
        ("upstreams.strategy", 6),
        ("upstreams.conditional.bad name", 9),
        ("cache.max_entriez", 11),
        ("cache.prefetch", 12),
        ("log.retention", 14),
        ("alerts[0]", 15),
    ]


def test_the_error_message_lists_every_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(MANY, source="home.yaml", defaults=DEFAULTS)
    text = str(caught.value)
    assert text.startswith("home.yaml: 9 problem(s) in the configuration:\n")
    assert "  - server.listen[0]: port 99999 is not between 0 and 65535 (line 2)" in text


def test_problems_on_one_line_keep_their_order() -> None:
    problems = problems_of('upstreams: {servers: ["dns.google", "quic://1.1.1.1"], strategy: x}\n')
    assert [p.path for p in problems] == [
        "upstreams.servers[0]",
        "upstreams.servers[1]",
        "upstreams.strategy",
    ]


# Listen addresses


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param('["127.0.0.1:5353"]', [("127.0.0.1", 5353)], id="ipv4-port"),
        pytest.param('["[::1]:5353"]', [("::1", 5353)], id="ipv6-port"),
        pytest.param('["0.0.0.0"]', [("0.0.0.0", 53)], id="ipv4-bare"),
        pytest.param('["::"]', [("::", 53)], id="ipv6-bare"),
        pytest.param('["[::1]"]', [("::1", 53)], id="ipv6-brackets-no-port"),
        pytest.param('["[::]:0"]', [("::", 0)], id="ipv6-any-port-0"),
        pytest.param("[127.0.0.1:0]", [("127.0.0.1", 0)], id="unquoted-flow"),
        pytest.param("[::1, 127.0.0.1]", [("::1", 53), ("127.0.0.1", 53)], id="unquoted-ipv6-flow"),
        pytest.param(
            "\n    - ::1\n    - 10.0.0.1:53", [("::1", 53), ("10.0.0.1", 53)], id="block-list"
        ),
        pytest.param("127.0.0.1:5300", [("127.0.0.1", 5300)], id="single-value"),
        pytest.param('["[fe80:0:0::1]:53"]', [("fe80::1", 53)], id="ipv6-canonical"),
    ],
)
def test_listen_forms(text: str, expected: list[tuple[str, int]]) -> None:
    config = sut(f"server:\n  listen: {text}\n")
    assert config.server.listen == tuple(ListenAddress(h, p) for h, p in expected)


def test_listen_addresses_print_as_written() -> None:
    listen = sut('server: {listen: ["[::1]:5353", "127.0.0.1:53"]}').server.listen
    assert [str(a) for a in listen] == ["[::1]:5353", "127.0.0.1:53"]


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        pytest.param(
            '["127.0.0.1:99999"]',
            "server.listen[0]",
            "port 99999 is not between 0 and 65535",
            id="port-too-big",
        ),
        pytest.param(
            '["127.0.0.1:-1"]', "server.listen[0]", '"-1" is not a port number', id="port-negative"
        ),
        pytest.param(
            '["127.0.0.1:"]', "server.listen[0]", '"" is not a port number', id="port-empty"
        ),
        pytest.param(
            '["localhost:53"]',
            "server.listen[0]",
            '"localhost" is not an IP address; listen on an address such as 0.0.0.0, ::, '
            "127.0.0.1 or ::1",
            id="host-name",
        ),
        pytest.param(
            '["[::1:53"]',
            "server.listen[0]",
            '"[::1:53" opens "[" without closing it',
            id="unclosed-bracket",
        ),
        pytest.param(
            '["[::1]53"]',
            "server.listen[0]",
            '"[::1]53": expected ":port" after "]"',
            id="no-colon-after-bracket",
        ),
        pytest.param(
            '["0.0.0.0:53", "::1", "0.0.0.0:53"]',
            "server.listen[2]",
            '"0.0.0.0:53" is listed twice (first on line 2)',
            id="repeated",
        ),
        pytest.param("[]", "server.listen", "needs at least one address to listen on", id="empty"),
        pytest.param(
            '[["127.0.0.1"]]',
            "server.listen[0]",
            "expected addresses, not a list",
            id="nested-list",
        ),
        pytest.param(
            "{a: 1}", "server.listen", "expected a list of addresses, not a mapping", id="mapping"
        ),
    ],
)
def test_bad_listen_addresses(text: str, path: str, message: str) -> None:
    assert the_problem(f"server:\n  listen: {text}\n") == Problem(path, message, 2)


# Allowed clients


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "[127.0.0.0/8, ::1, fe80::/10]",
            ["127.0.0.0/8", "::1/128", "fe80::/10"],
            id="unquoted-flow",
        ),
        pytest.param('["10.0.0.1"]', ["10.0.0.1/32"], id="address-is-a-host-network"),
        pytest.param('["192.168.1.77/24"]', ["192.168.1.0/24"], id="host-bits-ignored"),
        pytest.param('["0.0.0.0/0", "::/0"]', ["0.0.0.0/0", "::/0"], id="everyone-when-asked"),
        pytest.param("192.168.0.0/16", ["192.168.0.0/16"], id="single-value"),
    ],
)
def test_allow_clients_forms(text: str, expected: list[str]) -> None:
    config = sut(f"server:\n  allow_clients: {text}\n")
    assert config.server.allow_clients == tuple(net(n) for n in expected)


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        pytest.param(
            "[10.0.0.0/33]",
            "server.allow_clients[0]",
            '"10.0.0.0/33" is not an IP address or network like 192.168.0.0/16 or fe80::/10',
            id="prefix-too-long",
        ),
        pytest.param(
            "[::1, everyone]",
            "server.allow_clients[1]",
            '"everyone" is not an IP address or network like 192.168.0.0/16 or fe80::/10',
            id="word",
        ),
        pytest.param(
            "[]",
            "server.allow_clients",
            "is empty, so every client would be refused; list the networks that may ask",
            id="empty",
        ),
    ],
)
def test_bad_allow_clients(text: str, path: str, message: str) -> None:
    assert the_problem(f"server:\n  allow_clients: {text}\n") == Problem(path, message, 2)


# Upstream servers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("9.9.9.9", udp("9.9.9.9"), id="bare-ipv4"),
        pytest.param("1.1.1.1:53", udp("1.1.1.1"), id="ipv4-port"),
        pytest.param("1.1.1.1:5300", udp("1.1.1.1", 5300), id="ipv4-other-port"),
        pytest.param("[2620:fe::fe]:53", udp("2620:fe::fe"), id="ipv6-port"),
        pytest.param("2620:fe::fe", udp("2620:fe::fe"), id="bare-ipv6"),
        pytest.param("[2620:00fe:0::00fe]", udp("2620:fe::fe"), id="ipv6-canonical"),
        pytest.param("udp://9.9.9.9", udp("9.9.9.9"), id="udp-scheme"),
        pytest.param("UDP://9.9.9.9:5353", udp("9.9.9.9", 5353), id="scheme-case"),
        pytest.param("tcp://8.8.8.8", UpstreamServer("tcp", "8.8.8.8", 53), id="tcp"),
        pytest.param("tcp://[::1]:5300", UpstreamServer("tcp", "::1", 5300), id="tcp-ipv6"),
        pytest.param(
            "tls://1.1.1.1#cloudflare-dns.com",
            UpstreamServer("tls", "1.1.1.1", 853, "cloudflare-dns.com"),
            id="tls",
        ),
        pytest.param(
            "tls://1.1.1.1:853#Cloudflare-DNS.com.",
            UpstreamServer("tls", "1.1.1.1", 853, "cloudflare-dns.com"),
            id="tls-port-name-normalised",
        ),
        pytest.param(
            "tls://[2620:fe::fe]:8853#dns.quad9.net",
            UpstreamServer("tls", "2620:fe::fe", 8853, "dns.quad9.net"),
            id="tls-ipv6",
        ),
        pytest.param(
            "https://1.1.1.1/dns-query",
            UpstreamServer("https", "1.1.1.1", 443, None, "/dns-query"),
            id="doh-address",
        ),
        pytest.param(
            "https://9.9.9.9", UpstreamServer("https", "9.9.9.9", 443), id="doh-default-path"
        ),
        pytest.param(
            "https://1.1.1.1/dns-query#Cloudflare-DNS.com.",
            UpstreamServer("https", "1.1.1.1", 443, "cloudflare-dns.com"),
            id="doh-address-name",
        ),
        pytest.param(
            "https://dns.quad9.net/dns-query#9.9.9.9",
            UpstreamServer("https", "9.9.9.9", 443, "dns.quad9.net"),
            id="doh-name-bootstrap",
        ),
        pytest.param(
            "HTTPS://[2620:fe::fe]:8443/q/dns?x=1#dns.quad9.net",
            UpstreamServer("https", "2620:fe::fe", 8443, "dns.quad9.net", "/q/dns?x=1"),
            id="doh-ipv6-port-path",
        ),
        pytest.param(
            "https://Dns.Google:8443/resolve#[2001:4860:4860::8888]",
            UpstreamServer("https", "2001:4860:4860::8888", 8443, "dns.google", "/resolve"),
            id="doh-bootstrap-ipv6-port",
        ),
        pytest.param("  9.9.9.9  ", udp("9.9.9.9"), id="spaces-trimmed"),
    ],
)
def test_upstream_forms(text: str, expected: UpstreamServer) -> None:
    config = sut(f'upstreams:\n  servers: ["{text}"]\n')
    assert config.upstreams.servers == (expected,)
    assert parse_upstream(str(expected)) == expected  # what is printed reads back the same


TLS_NEEDS_NAME = (
    "tls:// needs the server name after '#' to verify its certificate, "
    "e.g. tls://1.1.1.1#cloudflare-dns.com"
)
NOT_AN_IP = (
    'upstream host must be an IP address, not "{}" '
    "(the proxy must not depend on DNS to find its resolvers)"
)
DOH_FORMS = (
    "https://1.1.1.1/dns-query, https://1.1.1.1/dns-query#cloudflare-dns.com "
    "or https://dns.quad9.net/dns-query#9.9.9.9"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "https://dns.quad9.net/dns-query",
            NOT_AN_IP.format("dns.quad9.net")
            + "; write https://dns.quad9.net/dns-query#<its address>",
            id="doh-host-name",
        ),
        pytest.param(
            "https://dns.quad9.net/dns-query#dns9.quad9.net",
            "\"dns9.quad9.net\" after '#' is not an IP address; the proxy must not depend on DNS "
            "to find its resolvers, so write https://dns.quad9.net/dns-query#<its address>",
            id="doh-host-name-name",
        ),
        pytest.param(
            "https://1.1.1.1/dns-query#1.0.0.1",
            f"\"1.0.0.1\" after '#' is not a server name for the certificate; write {DOH_FORMS}",
            id="doh-two-addresses",
        ),
        pytest.param(
            "https://1.1.1.1/dns-query#not a name",
            f"\"not a name\" after '#' is not a server name for the certificate; write {DOH_FORMS}",
            id="doh-bad-name",
        ),
        pytest.param(
            "https://user@1.1.1.1/dns-query",
            f'"user@1.1.1.1" is not an IP address or host name; write {DOH_FORMS}',
            id="doh-user-info",
        ),
        pytest.param(
            "https://dns.google/dns-query{?dns}#8.8.8.8",
            '"/dns-query{?dns}" is not a URL path like /dns-query',
            id="doh-uri-template",
        ),
        pytest.param(
            "https://1.1.1.1:0/dns-query", "port 0 is not between 1 and 65535", id="doh-port-0"
        ),
        pytest.param(
            "quic://1.1.1.1",
            'unknown scheme "quic://"; use udp://, tcp://, tls:// or https://',
            id="unknown-scheme",
        ),
        pytest.param("dns.google", NOT_AN_IP.format("dns.google"), id="host-name"),
        pytest.param("tcp://dns.google:53", NOT_AN_IP.format("dns.google"), id="tcp-host-name"),
        pytest.param(
            "tls://dns.google",
            NOT_AN_IP.format("dns.google") + "; write tls://<its address>#dns.google",
            id="tls-host-name",
        ),
        pytest.param("tls://1.1.1.1", TLS_NEEDS_NAME, id="tls-without-name"),
        pytest.param("tls://1.1.1.1:853#", TLS_NEEDS_NAME, id="tls-empty-name"),
        pytest.param(
            "tls://1.1.1.1#not a name",
            '"not a name" is not a valid server name for the certificate',
            id="tls-bad-name",
        ),
        pytest.param(
            "udp://1.1.1.1#one.one.one.one",
            "only tls:// and https:// take a server name after '#', not udp://",
            id="udp-with-name",
        ),
        pytest.param("1.1.1.1:0", "port 0 is not between 1 and 65535", id="port-0"),
        pytest.param("1.1.1.1:65536", "port 65536 is not between 1 and 65535", id="port-too-big"),
        pytest.param(
            "1.1.1.1:" + "9" * 20, f"port {'9' * 20} is not between 1 and 65535", id="port-huge"
        ),
        pytest.param("1.1.1.1:dns", '"dns" is not a port number', id="port-word"),
        pytest.param(
            "[2620:fe::fe", '"[2620:fe::fe" opens "[" without closing it', id="unclosed-bracket"
        ),
        pytest.param("[dns.google]:53", NOT_AN_IP.format("dns.google"), id="name-in-brackets"),
    ],
)
def test_bad_upstreams(text: str, message: str) -> None:
    text = f'upstreams:\n  servers:\n    - "9.9.9.9"\n    - "{text}"\n'
    assert the_problem(text) == Problem("upstreams.servers[1]", message, 4)


@pytest.mark.parametrize(
    ("text", "path", "message", "line"),
    [
        pytest.param(
            "upstreams:\n  servers: []\n",
            "upstreams.servers",
            "needs at least one server",
            2,
            id="empty-list",
        ),
        pytest.param(
            "upstreams:\n  servers:\n",
            "upstreams.servers",
            "needs at least one server",
            2,
            id="no-value",
        ),
        pytest.param(
            'upstreams:\n  servers: ["9.9.9.9", "udp://9.9.9.9:53"]\n',
            "upstreams.servers[1]",
            '"udp://9.9.9.9:53" is listed twice (first on line 2)',
            2,
            id="repeated",
        ),
        pytest.param(
            "upstreams:\n  servers: [9.9.9.9, '']\n",
            "upstreams.servers[1]",
            "is empty; expected servers",
            2,
            id="empty-entry",
        ),
    ],
)
def test_bad_server_lists(text: str, path: str, message: str, line: int) -> None:
    assert the_problem(text) == Problem(path, message, line)


# Conditional forwarding


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "{home.arpa: 192.168.1.1}", [("home.arpa", [udp("192.168.1.1")])], id="one-server"
        ),
        pytest.param(
            "{home.arpa: [192.168.1.1, 'tcp://192.168.1.2']}",
            [("home.arpa", [udp("192.168.1.1"), UpstreamServer("tcp", "192.168.1.2", 53)])],
            id="list-of-servers",
        ),
        pytest.param(
            "{Home.ARPA.: 192.168.1.1}",
            [("home.arpa", [udp("192.168.1.1")])],
            id="suffix-normalised",
        ),
        pytest.param(
            "{168.192.in-addr.arpa: 192.168.1.1}",
            [("168.192.in-addr.arpa", [udp("192.168.1.1")])],
            id="reverse-zone-v4",
        ),
        pytest.param(
            "{d.f.ip6.arpa: '[fd00::1]:53'}",
            [("d.f.ip6.arpa", [udp("fd00::1")])],
            id="reverse-zone-v6",
        ),
        pytest.param(
            "{corp: 'tls://10.0.0.53#ns.corp'}",
            [("corp", [UpstreamServer("tls", "10.0.0.53", 853, "ns.corp")])],
            id="tls",
        ),
        pytest.param(
            "\n    school.lan: 10.6.0.53\n    _msdcs.school.lan: 10.6.0.54\n",
            [("school.lan", [udp("10.6.0.53")]), ("_msdcs.school.lan", [udp("10.6.0.54")])],
            id="file-order-kept",
        ),
        pytest.param("", [], id="no-value"),
        pytest.param("{}", [], id="empty"),
    ],
)
def test_conditional_forms(text: str, expected: list[tuple[str, list[UpstreamServer]]]) -> None:
    config = sut(f"upstreams:\n  conditional: {text}\n")
    assert config.upstreams.conditional == tuple((s, tuple(servers)) for s, servers in expected)


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        pytest.param(
            "{'bad name': 10.0.0.1}",
            "upstreams.conditional.bad name",
            '"bad name" is not a valid domain name',
            id="bad-suffix",
        ),
        pytest.param(
            "{-x.lan: 10.0.0.1}",
            "upstreams.conditional.-x.lan",
            '"-x.lan" is not a valid domain name',
            id="leading-hyphen",
        ),
        pytest.param(
            "{'.': 10.0.0.1}",
            "upstreams.conditional..",
            "the root cannot be a conditional suffix; upstreams.servers answer it",
            id="root",
        ),
        pytest.param(
            "{home.arpa: }",
            "upstreams.conditional.home.arpa",
            "needs at least one server",
            id="no-server",
        ),
        pytest.param(
            "{home.arpa: []}",
            "upstreams.conditional.home.arpa",
            "needs at least one server",
            id="empty-list",
        ),
        pytest.param(
            "{home.arpa: router.lan}",
            "upstreams.conditional.home.arpa",
            NOT_AN_IP.format("router.lan"),
            id="server-name",
        ),
        pytest.param(
            "{home.arpa: [10.0.0.1, 'https://x/dns-query']}",
            "upstreams.conditional.home.arpa[1]",
            NOT_AN_IP.format("x") + "; write https://x/dns-query#<its address>",
            id="bad-server-in-list",
        ),
        pytest.param(
            "[home.arpa]",
            "upstreams.conditional",
            "expected a mapping of domain suffixes to servers, e.g. "
            "{home.arpa: 192.168.1.1}, not a list",
            id="not-a-mapping",
        ),
    ],
)
def test_bad_conditional(text: str, path: str, message: str) -> None:
    assert the_problem(f"upstreams:\n  conditional: {text}\n") == Problem(path, message, 2)


# Files


def test_relative_database_is_taken_from_the_config_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc").mkdir()
    path = tmp_path / "etc" / "config.yaml"
    path.write_text("log:\n  database: data/blocked.db\n")
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("etc/config.yaml"))
    assert config.log.database == tmp_path / "etc" / "data" / "blocked.db"
    assert config.source == "etc/config.yaml"


def test_database_under_home_is_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/parent")
    assert sut("log: {database: ~/blocked.db}").log.database == Path("/home/parent/blocked.db")


def test_base_dir_applies_to_load_config_text() -> None:
    config = sut("log: {database: x.db}", base_dir=Path("/etc/filterdns"))
    assert config.log.database == Path("/etc/filterdns/x.db")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(lambda d: d / "missing.yaml", "No such file or directory", id="missing"),
        pytest.param(lambda d: d, "Is a directory", id="directory"),
        pytest.param(
            lambda d: _write_bytes(d / "latin1.yaml", b"cache: {}\n# \xe9t\xe9\n"),
            "it is not UTF-8 text",
            id="not-utf8",
        ),
    ],
)
def test_an_unreadable_file_is_a_config_error_naming_it(
    tmp_path: Path, make: Callable[[Path], Path], reason: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.source == str(path)
    assert caught.value.problems == [Problem("", f"cannot read {path}: {reason}")]


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_load_config_reports_problems_with_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("server:\n  listen: ['127.0.0.1:99999']\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert caught.value.source == str(path)
    assert caught.value.problems == [
        Problem("server.listen[0]", "port 99999 is not between 0 and 65535", 2)
    ]


@pytest.mark.parametrize(
    ("explicit", "present", "expected"),
    [
        pytest.param("my.yaml", {"system", "local"}, "my.yaml", id="explicit-wins"),
        pytest.param("absent.yaml", set(), "absent.yaml", id="explicit-even-if-missing"),
        pytest.param(None, {"system", "local"}, "system", id="system-file"),
        pytest.param(None, {"local"}, "config.yaml", id="local-file"),
        pytest.param(None, set(), None, id="embedded-defaults"),
    ],
)
def test_find_config(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    explicit: str | None,
    present: set[str],
    expected: str | None,
) -> None:
    system_path = tmp_path / "etc" / "config.yaml"
    monkeypatch.setattr(config_module, "SYSTEM_CONFIG", system_path)
    monkeypatch.chdir(tmp_path)
    if "system" in present:
        system_path.parent.mkdir()
        system_path.write_text("")
    if "local" in present:
        (tmp_path / "config.yaml").write_text("")
    found = find_config(explicit)
    if expected == "system":
        assert found == system_path
    else:
        assert found == (None if expected is None else Path(expected))


def test_the_example_file_loads_and_documents_every_key() -> None:
    example = REPO / "config.example.yaml"
    config = load_config(example)
    assert config.source == str(example)
    documented = keys_of(example.read_text())
    assert set(documented) == set(TOP_LEVEL)
    assert config.alerts and config.report.footer
    assert {name: documented[name] for name in SECTIONS} == SECTIONS
    assert documented["categories"]  # an example of each kind of source
    assert set(documented["age_bands"]) < set(BANDS)
    assert documented["profiles"] and documented["calendars"]
    text = example.read_text()
    for key in (*PROFILE_KEYS, *SCHEDULE_KEYS, *CLIENT_KEYS, *BAND_KEYS):
        assert re.search(rf"\b{key}\b", text), key
    for name in (*BANDS, *BLOCK_RESPONSES, *YOUTUBE_LEVELS, *ALWAYS_BLOCKED):
        assert name in text, name
    assert config.profiles and config.clients and config.calendars


def test_the_readme_minimal_configuration_loads() -> None:
    readme = (REPO / "README.md").read_text()
    block = readme.split("## A minimal configuration", 1)[1].split("```yaml\n", 1)[1]
    config = sut(block.split("```", 1)[0])
    assert [str(a) for a in config.server.listen] == ["0.0.0.0:53", "[::]:53"]
    assert config.server.allow_clients == (
        net("127.0.0.0/8"),
        net("::1/128"),
        net("192.168.0.0/16"),
    )
    assert config.upstreams.conditional == (("home.arpa", (udp("192.168.1.1"),)),)


# Arbitrary input

KEYS = [key for keys in SECTIONS.values() for key in keys] + [
    *TOP_LEVEL,
    *BAND_KEYS,
    *PROFILE_KEYS,
    *SCHEDULE_KEYS,
    *CLIENT_KEYS,
    "minh",
    "9-12",
    "typo",
    "<<",
]
SCALARS = st.one_of(
    st.text(max_size=12),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.sampled_from(["9.9.9.9", "tls://1.1.1.1#a.b", "[::1]:53", "10s", "1x", "fastest", "::1"]),
    st.sampled_from(["9-12", "all", "mon-fri", "21:00", "minh", "aa:bb:cc:dd:ee:ff", "UTC"]),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(),
        st.text(alphabet=st.sampled_from(list("[]{}:,-#&*!|>'\"%@` \n\t.0123456789abs"))),
        DOCUMENTS.map(lambda d: yaml.safe_dump(d, default_flow_style=None)),
        DOCUMENTS.map(lambda d: yaml.safe_dump(d, default_flow_style=True)),
    )
)
def test_any_text_gives_a_config_or_located_problems(text: str) -> None:
    try:
        config = load_config_text(text, defaults=DEFAULTS)
    except ConfigError as exc:
        assert exc.problems
        if "holds no settings" in str(exc) or "is empty (0 bytes)" in str(exc):
            return  # about the whole file, not one line of it
        for problem in exc.problems:
            assert problem.line is not None and problem.line >= 1, problem
            assert problem.message
    else:
        assert isinstance(config, Config)


# Categories and lists


def test_lists_defaults_live_in_the_state_directory() -> None:
    assert DEFAULTS.lists.cache_dir == STATE / "lists"
    assert (DEFAULTS.lists.refresh, DEFAULTS.lists.timeout) == (86400.0, 30.0)
    assert DEFAULTS.categories == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "categories: {gambling: [shipped]}", (("gambling", ("shipped",)),), id="shipped"
        ),
        pytest.param("categories: {games: shipped}", (("games", ("shipped",)),), id="single-value"),
        pytest.param(
            "categories:\n  gambling: [shipped, 'https://lists.test/g.txt']\n"
            "  homework: [extra/distractions.txt, /etc/filterdns/more.txt]\n",
            (
                ("gambling", ("shipped", "https://lists.test/g.txt")),
                ("homework", ("/cfg/extra/distractions.txt", "/etc/filterdns/more.txt")),
            ),
            id="url-relative-and-absolute-paths",
        ),
        pytest.param("categories: {}", (), id="empty"),
    ],
)
def test_categories_name_their_sources(text: str, expected: object) -> None:
    assert sut(text, base_dir=Path("/cfg")).categories == expected


@pytest.mark.parametrize(
    ("text", "path", "message", "line"),
    [
        pytest.param(
            "categories:\n  homework: [shipped]\n",
            "categories.homework[0]",
            "'homework' has no shipped list; shipped categories: adult, gambling, dating, drugs, "
            "violence, social, chat, games, video, bypass, malware, phishing, piracy, "
            "cryptojacking, stalkerware, ads",
            2,
            id="shipped-for-a-new-category",
        ),
        pytest.param(
            "categories:\n  gambling: ['ftp://x/y.txt']\n",
            "categories.gambling[0]",
            '"ftp://x/y.txt": list sources are files or http(s):// URLs',
            2,
            id="other-scheme",
        ),
        pytest.param(
            "categories:\n  Gambling!: [extra.txt]\n",
            "categories.Gambling!",
            "\"Gambling!\" is not a category name (lower-case letters, digits, '-' and '_', at "
            "most 40)",
            2,
            id="bad-name",
        ),
        pytest.param(
            "categories:\n  games: ~0\n",
            "categories.games",
            '"~0": this system has no such user\'s home',
            2,
            id="home-of-no-user",
        ),
        pytest.param(
            "categories:\n  gambling: []\n",
            "categories.gambling",
            "needs at least one source; write [shipped] for the shipped list",
            2,
            id="no-sources",
        ),
        pytest.param(
            "lists:\n  refresh: soon\n",
            "lists.refresh",
            '"soon" is not a duration like 10s, 5m, 24h or 90d',
            2,
            id="refresh",
        ),
        pytest.param(
            "lists:\n  max_megabytes: 0\n",
            "lists.max_megabytes",
            "0 must be at least 1",
            2,
            id="max-megabytes",
        ),
        pytest.param(
            "lists:\n  refresh: 1h\n  max_shrink: 120%\n",
            "lists.max_shrink",
            '"120%" is more than 100%',
            3,
            id="max-shrink-over-100",
        ),
        pytest.param(
            "lists:\n  max_shrink: -5%\n",
            "lists.max_shrink",
            '"-5%" is not a percentage like 90% (0 to 100)',
            2,
            id="max-shrink-negative",
        ),
        pytest.param(
            "lists:\n  max_shrink: most\n",
            "lists.max_shrink",
            '"most" is not a percentage like 90% (0 to 100)',
            2,
            id="max-shrink-words",
        ),
    ],
)
def test_bad_categories_and_lists(text: str, path: str, message: str, line: int) -> None:
    assert the_problem(text) == Problem(path, message, line)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("lists: {}", 90.0, id="default"),
        pytest.param("lists: {max_shrink: 90%}", 90.0, id="percent"),
        pytest.param("lists: {max_shrink: 75 %}", 75.0, id="percent-space"),
        pytest.param("lists: {max_shrink: 50}", 50.0, id="plain-number"),
        pytest.param("lists: {max_shrink: 99.5%}", 99.5, id="fraction"),
        pytest.param("lists: {max_shrink: 100%}", 100.0, id="disabled"),
        pytest.param("lists: {max_shrink: 0}", 0.0, id="no-shrink-at-all"),
    ],
)
def test_max_shrink_is_a_percentage(text: str, expected: float) -> None:
    assert sut(text).lists.max_shrink == expected


# The parental policy: age bands

# Every band but adult blocks what the name model flags (sites no list holds yet).
SUSPECT = {"adult-suspect", "gambling-suspect"}
CHILD = {"adult", "gambling", "dating", "drugs", "violence", "social", "chat", "bypass", "piracy"}
CHILD |= SUSPECT
ALWAYS = set(ALWAYS_BLOCKED)
EVERY_DAY = frozenset(range(7))
SUN_THU = frozenset({6, 0, 1, 2, 3})
FRI_SAT = frozenset({4, 5})
# The age band table (config.example.yaml, `age_bands:`): band -> (blocked categories,
# SafeSearch, YouTube, "block all" windows as (days, from, to) in minutes).
PRODUCT_BANDS = {
    "under-9": (CHILD | {"games"} | ALWAYS, True, "strict", [(EVERY_DAY, 20 * 60, 7 * 60)]),
    "9-12": (
        CHILD | ALWAYS,
        True,
        "strict",
        [(SUN_THU, 21 * 60, 6 * 60 + 30), (FRI_SAT, 22 * 60, 7 * 60)],
    ),
    "13-15": (
        {"adult", "gambling", "dating", "drugs", "violence", "bypass", "piracy"} | SUSPECT | ALWAYS,
        True,
        "moderate",
        [(SUN_THU, 22 * 60 + 30, 6 * 60)],
    ),
    "16-17": ({"adult", "gambling", "drugs", "bypass"} | SUSPECT | ALWAYS, True, "off", []),
    "adult": (ALWAYS, False, "off", []),
}


def band_row(band: BandConfig) -> tuple[set[str], bool, str, list[tuple[frozenset[int], int, int]]]:
    assert all(rule.block_all and not rule.block and not rule.allow for rule in band.schedules)
    windows = [(r.window.days, r.window.start, r.window.end) for r in band.schedules]
    return set(band.categories), band.safesearch, band.youtube, windows


def test_the_effective_band_table_is_the_product_table() -> None:
    assert [band.name for band in DEFAULTS.age_bands] == list(BANDS)
    assert {band.name: band_row(band) for band in DEFAULTS.age_bands} == PRODUCT_BANDS
    for band in DEFAULTS.age_bands:
        assert len(set(band.categories)) == len(band.categories)
        for index, rule in enumerate(band.schedules):
            assert (rule.name, rule.path, rule.line) == (
                "bedtime",
                f"age_bands.{band.name}.schedules[{index}]",
                None,
            )
            assert rule.window.except_calendar is None


def test_band_and_profile_lookups() -> None:
    assert DEFAULTS.band("13-15").youtube == "moderate"
    assert DEFAULTS.profile("household").age_band == "13-15"
    with pytest.raises(KeyError):
        DEFAULTS.band("10-12")
    with pytest.raises(KeyError):
        DEFAULTS.profile("minh")


def test_a_fresh_install_protects_every_device_with_the_household_profile() -> None:
    household = ProfileConfig(name="household", age_band="13-15", band_schedules=False)
    assert DEFAULTS.profiles == (household,)
    assert DEFAULTS.default_profile == "household"
    assert DEFAULTS.schedules_of(household) == ()  # a bedtime needs a named child
    assert DEFAULTS.band("13-15").safesearch and DEFAULTS.band("13-15").youtube == "moderate"
    assert {"adult", "gambling", "bypass"} <= set(DEFAULTS.band("13-15").categories)
    assert DEFAULTS.band("adult").categories == ALWAYS_BLOCKED
    assert DEFAULTS.band("adult").schedules == ()
    assert (DEFAULTS.clients, DEFAULTS.calendars) == ((), ())
    assert DEFAULTS.blocking == BlockingConfig(response="nxdomain", ttl=10, bypass_protection=True)
    assert DEFAULTS.server.timezone is None


def test_policy_dataclass_defaults_agree_with_default_yaml() -> None:
    bare = Config(DEFAULTS.server, DEFAULTS.upstreams)
    assert bare.age_bands == DEFAULTS.age_bands
    assert bare.profiles == DEFAULTS.profiles
    assert bare.default_profile == DEFAULTS.default_profile
    assert (bare.clients, bare.calendars) == (DEFAULTS.clients, DEFAULTS.calendars)
    assert BlockingConfig() == DEFAULTS.blocking


@pytest.mark.parametrize(
    ("text", "band", "expected"),
    [
        pytest.param(
            "age_bands: {9-12: {categories: [adult, games]}}",
            "9-12",
            ({"adult", "games"} | ALWAYS, True, "strict", PRODUCT_BANDS["9-12"][3]),
            id="categories-replaced-always-blocked-kept",
        ),
        pytest.param(
            "age_bands: {16-17: {categories: []}}",
            "16-17",
            (ALWAYS, True, "off", []),
            id="categories-emptied",
        ),
        pytest.param(
            "age_bands: {9-12: {safesearch: false, youtube: moderate}}",
            "9-12",
            (CHILD | ALWAYS, False, "moderate", PRODUCT_BANDS["9-12"][3]),
            id="safesearch-and-youtube",
        ),
        pytest.param(
            "age_bands: {under-9: {schedules: []}}",
            "under-9",
            (CHILD | {"games"} | ALWAYS, True, "strict", []),
            id="bedtime-removed",
        ),
        pytest.param(
            "age_bands: {under-9: {schedules: }}",
            "under-9",
            (CHILD | {"games"} | ALWAYS, True, "strict", []),
            id="bedtime-removed-by-null",
        ),
        pytest.param(
            "age_bands:\n  adult:\n    schedules:\n"
            '      - {days: daily, from: "01:00", to: "05:00", block: all}\n',
            "adult",
            (ALWAYS, False, "off", [(EVERY_DAY, 60, 300)]),
            id="schedule-added-to-adult",
        ),
        pytest.param(
            "age_bands: {13-15: {youtube: off}}",
            "13-15",
            (PRODUCT_BANDS["13-15"][0], True, "off", PRODUCT_BANDS["13-15"][3]),
            id="youtube-off-is-a-word",
        ),
    ],
)
def test_age_band_overrides(
    text: str,
    band: str,
    expected: tuple[set[str], bool, str, list[tuple[frozenset[int], int, int]]],
) -> None:
    config = sut(text)
    assert band_row(config.band(band)) == expected
    assert [b.name for b in config.age_bands] == list(BANDS)
    for other in config.age_bands:
        if other.name != band:
            assert other == DEFAULTS.band(other.name)


def test_a_band_schedule_override_knows_its_path_and_line() -> None:
    config = sut(
        "age_bands:\n  9-12:\n    schedules:\n"
        '      - {name: late, days: [fri, sat], from: "23:00", to: "07:00", block: all}\n'
    )
    (rule,) = config.band("9-12").schedules
    assert (rule.name, rule.path, rule.line) == ("late", "age_bands.9-12.schedules[0]", 4)


# Profiles and schedules

MINH = """\
profiles:
  minh:
    age_band: 9-12
    block: [Roblox.com., "*.fortnite.com"]
    allow: [khanacademy.org]
    categories: [video]
    safesearch: false
    youtube: moderate
    timezone: Europe/Berlin
    schedules:
      - name: bedtime
        days: [sun-thu]
        from: "21:00"
        to: "06:30"
        block: all
        allow: [school.edu.vn]
"""


def test_a_profile_with_every_key() -> None:
    config = sut(MINH)
    minh, household = config.profiles
    assert household.name == "household"  # the embedded default stays
    assert minh == ProfileConfig(
        name="minh",
        age_band="9-12",
        block=("roblox.com", "fortnite.com"),
        allow=("khanacademy.org",),
        categories=("video",),
        safesearch=False,
        youtube="moderate",
        schedules=minh.schedules,
        timezone="Europe/Berlin",
    )
    (rule,) = minh.schedules
    assert rule == ScheduleRule(
        name="bedtime",
        window=rule.window,
        block_all=True,
        allow=("school.edu.vn",),
        path="profiles.minh.schedules[0]",
        line=11,
    )
    assert (rule.window.days, rule.window.start, rule.window.end) == (SUN_THU, 1260, 390)
    assert config.default_profile == "household"  # no default_profile: the protective one
    assert [r.name for r in config.schedules_of(minh)] == ["bedtime", "bedtime", "bedtime"]


def test_a_minimal_profile_takes_its_band_settings() -> None:
    guests, _household = sut("profiles: {guests: {age_band: 13-15}}").profiles
    assert guests == ProfileConfig("guests", "13-15")


def test_a_profile_can_leave_its_bands_bedtime_out() -> None:
    config = sut("profiles: {teen: {age_band: 13-15, band_schedules: false}}")
    assert config.schedules_of(config.profile("teen")) == ()
    assert config.band("13-15").schedules  # the band itself keeps its bedtime


SCHEDULE = 'profiles:\n  p:\n    age_band: 9-12\n    schedules:\n      - {{days: {days}, from: "{start}", to: "{end}", {action}}}\n'  # noqa: E501


def rule_of(
    action: str, days: str = "[mon]", start: str = "08:00", end: str = "09:00"
) -> ScheduleRule:
    text = SCHEDULE.format(days=days, start=start, end=end, action=action)
    (rule,) = sut(text).profile("p").schedules
    return rule


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        pytest.param("block: all", {"block_all": True}, id="block-all"),
        pytest.param("block: [all]", {"block_all": True}, id="block-all-in-a-list"),
        pytest.param(
            "block: all, allow: [School.edu.vn, olm.vn]",
            {"block_all": True, "allow": ("school.edu.vn", "olm.vn")},
            id="block-all-with-allowlist",
        ),
        pytest.param("block: [games, social]", {"block": ("games", "social")}, id="block-list"),
        pytest.param("block: games", {"block": ("games",)}, id="block-one-category"),
        pytest.param(
            "allow_categories: [games]", {"allow_categories": ("games",)}, id="allow-categories"
        ),
        pytest.param(
            "block: [video], allow_categories: [games]",
            {"block": ("video",), "allow_categories": ("games",)},
            id="block-and-allow-categories-together",
        ),
        pytest.param(
            "name: homework, block: [games]",
            {"name": "homework", "block": ("games",)},
            id="named",
        ),
    ],
)
def test_schedule_actions(action: str, expected: dict[str, object]) -> None:
    rule = rule_of(action)
    defaults = {"name": "schedule 1", "block_all": False, "block": (), "allow": ()}
    defaults["allow_categories"] = ()
    for key, value in {**defaults, **expected}.items():
        assert getattr(rule, key) == value, key
    assert (rule.path, rule.line) == ("profiles.p.schedules[0]", 5)


@pytest.mark.parametrize(
    ("days", "start", "end", "window"),
    [
        pytest.param("[mon-fri]", "07:30", "16:30", (frozenset(range(5)), 450, 990), id="range"),
        pytest.param(
            "[fri-mon]", "21:00", "06:30", (frozenset({4, 5, 6, 0}), 1260, 390), id="wrap"
        ),
        pytest.param("daily", "20:00", "07:00", (EVERY_DAY, 1200, 420), id="daily"),
        pytest.param(
            "[sat, Sunday]", "0:00", "24:00", (frozenset({5, 6}), 0, 1440), id="whole-day"
        ),
        pytest.param("weekdays", "12:00", "12:00", (frozenset(range(5)), 720, 720), id="alias"),
    ],
)
def test_schedule_windows(
    days: str, start: str, end: str, window: tuple[frozenset[int], int, int]
) -> None:
    rule = rule_of("block: all", days, start, end)
    assert (rule.window.days, rule.window.start, rule.window.end) == window


def test_schedule_names_default_to_their_position_and_except_names_a_calendar() -> None:
    config = sut(
        """\
        calendars:
          holidays: ["2026-12-24..2027-01-04", 2027-02-16]
        profiles:
          p:
            age_band: 9-12
            schedules:
              - {days: [mon], from: "08:00", to: "09:00", block: all}
              - {days: [tue], from: "08:00", to: "09:00", block: all, except: holidays}
        """
    )
    first, second = config.profile("p").schedules
    assert (first.name, second.name) == ("schedule 1", "schedule 2")
    assert first.window.except_calendar is None
    assert second.window.except_calendar == config.calendars[0]
    assert config.calendars == (
        Calendar(
            "holidays",
            ((date(2026, 12, 24), date(2027, 1, 4)), (date(2027, 2, 16), date(2027, 2, 16))),
        ),
    )


# Calendars, clients, default profile, blocking, time zones


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            'calendars: {a: ["2027-02-14..2027-02-22", "2026-12-25"]}',
            (Calendar("a", ((date(2026, 12, 25),) * 2, (date(2027, 2, 14), date(2027, 2, 22)))),),
            id="sorted",
        ),
        pytest.param(
            "calendars: {term-1: 2026-09-05..2026-12-20}",
            (Calendar("term-1", ((date(2026, 9, 5), date(2026, 12, 20)),)),),
            id="single-range",
        ),
        pytest.param("calendars: {empty: []}", (Calendar("empty", ()),), id="empty-allowed"),
        pytest.param("calendars: {}", (), id="none"),
    ],
)
def test_calendars(text: str, expected: tuple[Calendar, ...]) -> None:
    assert sut(text).calendars == expected


CLIENTS = """\
profiles: {{kid: {{age_band: under-9}}}}
clients:
  - {{name: c, {key}: {value}, profile: kid}}
"""


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        pytest.param("ip", "192.168.1.23", {"ip": ip("192.168.1.23")}, id="ipv4"),
        pytest.param("ip", "FD00:0::23", {"ip": ip("fd00::23")}, id="ipv6-canonical"),
        pytest.param("cidr", "10.6.1.0/24", {"cidr": net("10.6.1.0/24")}, id="cidr"),
        pytest.param("cidr", "10.6.1.77/24", {"cidr": net("10.6.1.0/24")}, id="cidr-host-bits"),
        pytest.param("cidr", "fd00:6::/64", {"cidr": net("fd00:6::/64")}, id="cidr-ipv6"),
        pytest.param("mac", "aa:bb:cc:dd:ee:ff", {"mac": "aa:bb:cc:dd:ee:ff"}, id="mac"),
        pytest.param("mac", "AA-BB-CC-DD-EE-0F", {"mac": "aa:bb:cc:dd:ee:0f"}, id="mac-dashes"),
        pytest.param("mac", "aabb.ccdd.eeff", {"mac": "aa:bb:cc:dd:ee:ff"}, id="mac-dots"),
        pytest.param("mac", "AABBCCDDEEFF", {"mac": "aa:bb:cc:dd:ee:ff"}, id="mac-bare"),
    ],
)
def test_clients(key: str, value: str, expected: dict[str, object]) -> None:
    config = sut(CLIENTS.format(key=key, value=f'"{value}"'))
    assert config.clients == (ClientConfig(name="c", profile="kid", **expected),)


@pytest.mark.parametrize(
    ("text", "default"),
    [
        pytest.param("cache: {}", "household", id="embedded"),
        pytest.param("default_profile: household", "household", id="embedded-named"),
        pytest.param("profiles: {}", "household", id="empty-profiles-keep-the-defaults"),
        pytest.param("profiles: {a: {age_band: adult}}", "household", id="one-profile"),
        pytest.param(
            "profiles: {a: {age_band: adult}, b: {age_band: 9-12}}", "household", id="several"
        ),
        pytest.param(
            "profiles: {household: {age_band: 9-12}}", "household", id="household-redefined"
        ),
        pytest.param(
            "profiles: {a: {age_band: adult}, b: {age_band: 9-12}}\ndefault_profile: b",
            "b",
            id="named",
        ),
    ],
)
def test_default_profile(text: str, default: str) -> None:
    config = sut(text)
    assert config.default_profile == default
    assert config.profile(default)


def test_profiles_in_a_file_join_the_embedded_household_profile() -> None:
    config = sut("profiles: {a: {age_band: adult}}")
    assert [p.name for p in config.profiles] == ["a", "household"]
    redefined = sut("profiles: {household: {age_band: under-9}}")
    assert [(p.name, p.age_band) for p in redefined.profiles] == [("household", "under-9")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("response: null", BlockingConfig("null"), id="null-unquoted"),
        pytest.param('response: "null"', BlockingConfig("null"), id="null-quoted"),
        pytest.param("response: refused", BlockingConfig("refused"), id="refused"),
        pytest.param(
            'response: custom, custom_ips: [192.168.1.2, "FD00::2"]',
            BlockingConfig(BlockResponse.CUSTOM, (ip("192.168.1.2"), ip("fd00::2"))),
            id="custom",
        ),
        pytest.param(
            "custom_ips: 192.168.1.2",
            BlockingConfig(custom_ips=(ip("192.168.1.2"),)),
            id="ips-kept",
        ),
        pytest.param("ttl: 1m", BlockingConfig(ttl=60), id="ttl"),
        pytest.param("ttl: 0", BlockingConfig(ttl=0), id="ttl-zero"),
        pytest.param(
            "bypass_protection: false", BlockingConfig(bypass_protection=False), id="bypass-off"
        ),
    ],
)
def test_blocking(text: str, expected: BlockingConfig) -> None:
    assert sut(f"blocking: {{{text}}}").blocking == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("timezone: Asia/Ho_Chi_Minh", "Asia/Ho_Chi_Minh", id="iana"),
        pytest.param("timezone: UTC", "UTC", id="utc"),
        pytest.param("timezone: Asia/Hanoi", "Asia/Ho_Chi_Minh", id="hanoi-means-ho-chi-minh"),
        pytest.param("timezone: Asia/Saigon", "Asia/Ho_Chi_Minh", id="the-old-name"),
        pytest.param("timezone: asia/ho_chi_minh", "Asia/Ho_Chi_Minh", id="any-case"),
        pytest.param("timezone: Asia/Ho Chi Minh", "Asia/Ho_Chi_Minh", id="spaces"),
        pytest.param("timezone: europe/berlin", "Europe/Berlin", id="lower-case"),
        pytest.param("timezone: null", None, id="system"),
        pytest.param("timezone:", None, id="empty"),
    ],
)
def test_server_timezone(text: str, expected: str | None) -> None:
    assert sut(f"server:\n  {text}\n").server.timezone == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("GMT+7", '"GMT+7" is a UTC offset, not a time zone; write the place, whose '
                     "daylight saving rules come with it, e.g. Asia/Ho_Chi_Minh for UTC+7; or "
                     "Etc/GMT-7 (the Etc/ names count the other way: Etc/GMT-7 is UTC+7)",
                     id="gmt-plus-7"),
        pytest.param("UTC+07:00", '"UTC+07:00" is a UTC offset, not a time zone; write the place,'
                     " whose daylight saving rules come with it, e.g. Asia/Ho_Chi_Minh for UTC+7;"
                     " or Etc/GMT-7 (the Etc/ names count the other way: Etc/GMT-7 is UTC+7)",
                     id="utc-plus-07-00"),
        pytest.param("-5", '"-5" is a UTC offset, not a time zone; write the place, whose '
                     "daylight saving rules come with it, e.g. America/New_York for UTC-5; or "
                     "Etc/GMT+5 (the Etc/ names count the other way: Etc/GMT+5 is UTC-5)",
                     id="bare-minus-5"),
        pytest.param("UTC+5:30", '"UTC+5:30" is a UTC offset, not a time zone; write the place, '
                     "whose daylight saving rules come with it, e.g. Asia/Kolkata for UTC+5:30",
                     id="half-hour"),
        pytest.param("Europe/Berln", '"Europe/Berln" is not an IANA time zone like Europe/Berlin'
                     ' or Asia/Ho_Chi_Minh (did you mean "Europe/Berlin", UTC+',
                     id="misspelt-with-its-offset"),
        pytest.param("Mars/Olympus", '"Mars/Olympus" is not an IANA time zone like Europe/Berlin'
                     " or Asia/Ho_Chi_Minh", id="nothing-close"),
    ],
)  # fmt: skip
def test_time_zones_that_are_not_zones_say_what_to_write(text: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_timezone(text)
    assert str(raised.value).startswith(message)
    if "Asia/Ho_Chi_Minh for" in message:
        assert "Asia/Yangon" not in str(raised.value)


def test_system_timezone(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    assert system_timezone({}, etc) == "UTC"
    (etc / "localtime").symlink_to("../usr/share/zoneinfo/America/New_York")
    assert system_timezone({}, etc) == "America/New_York"
    (etc / "timezone").write_text("Europe/Berlin\n")
    assert system_timezone({}, etc) == "Europe/Berlin"
    assert system_timezone({"TZ": ":Asia/Tokyo"}, etc) == "Asia/Tokyo"
    assert system_timezone({"TZ": "/usr/share/zoneinfo/Asia/Seoul"}, etc) == "Asia/Seoul"
    assert system_timezone({"TZ": "Not/AZone"}, etc) == "Europe/Berlin"
    (etc / "timezone").write_text("garbage\n")
    assert system_timezone({}, etc) == "America/New_York"
    assert isinstance(system_timezone(), str)


# Policy problems: every one with its path, message and line

BANDS_TEXT = "under-9, 9-12, 13-15, 16-17, adult"
CATEGORIES_TEXT = (
    "adult, adult-suspect, gambling, gambling-suspect, dating, drugs, violence, social, chat, "
    "games, video, bypass, malware, phishing, piracy, cryptojacking, stalkerware, ads"
)
KID = "profiles:\n  kid:\n    age_band: 9-12\n"
RULE = KID + "    schedules:\n      - {{{}}}\n"
OK_RULE = 'days: [mon], from: "08:00", to: "09:00"'
ACTION = "needs an action: block: all, block: [categories] or allow_categories: [categories]"
CLIENT = "profiles: {{kid: {{age_band: 9-12}}}}\nclients:\n  - {{{}}}\n"


@pytest.mark.parametrize(
    ("text", "path", "message", "line"),
    [
        pytest.param(
            "age_bands:\n  10-12: {youtube: off}\n",
            "age_bands.10-12",
            f'"10-12" is not an age band; valid bands: {BANDS_TEXT}',
            2,
            id="unknown-band",
        ),
        pytest.param(
            "age_bands:\n  9-12: {youtube: none}\n",
            "age_bands.9-12.youtube",
            '"none" is not one of strict, moderate, off',
            2,
            id="band-youtube",
        ),
        pytest.param(
            "age_bands:\n  9-12: {bedtime: []}\n",
            "age_bands.9-12.bedtime",
            "unknown key 'bedtime'; valid keys: categories, safesearch, youtube, schedules",
            2,
            id="band-unknown-key",
        ),
        pytest.param(
            "age_bands:\n  9-12:\n    categories: [gamez]\n",
            "age_bands.9-12.categories[0]",
            f'"gamez" is not a category; valid categories: {CATEGORIES_TEXT} '
            "(did you mean 'games'?)",
            3,
            id="band-category",
        ),
        pytest.param(
            "age_bands: [9-12]\n",
            "age_bands",
            "expected a mapping of age bands to overrides, e.g. {9-12: {youtube: moderate}}, "
            "not a list",
            1,
            id="bands-not-a-mapping",
        ),
        pytest.param(
            "profiles:\n  kid: {age_band: 9-13}\n",
            "profiles.kid.age_band",
            f'"9-13" is not an age band; valid bands: {BANDS_TEXT}',
            2,
            id="profile-band",
        ),
        pytest.param(
            "profiles:\n  kid: {youtube: strict}\n",
            "profiles.kid",
            f"needs age_band: one of {BANDS_TEXT}",
            2,
            id="profile-without-band",
        ),
        pytest.param(
            "profiles:\n  kid:\n",
            "profiles.kid",
            f"needs age_band: one of {BANDS_TEXT}",
            2,
            id="profile-empty",
        ),
        pytest.param(
            "profiles:\n  kid one: {age_band: 9-12}\n",
            "profiles.kid one",
            "\"kid one\" is not a profile name (letters, digits, '-', '_' and '.', at most 64, "
            "starting with a letter or digit; for spaces and the like add display_name, e.g. "
            'bo-me: {display_name: "bố mẹ"})',
            2,
            id="profile-name",
        ),
        pytest.param(
            KID + "    colour: blue\n",
            "profiles.kid.colour",
            "unknown key 'colour'; valid keys: age_band, block, allow, categories, safesearch, "
            "youtube, schedules, timezone, bedtime, band_schedules, display_name, budgets",
            4,
            id="profile-unknown-key",
        ),
        pytest.param(
            KID + "    block: [roblox.com, 'not a domain']\n",
            "profiles.kid.block[1]",
            '"not a domain" is not a domain name like example.com',
            4,
            id="profile-block-domain",
        ),
        pytest.param(
            KID + "    allow: [a.com, A.com.]\n",
            "profiles.kid.allow[1]",
            '"A.com." is listed twice (first on line 4)',
            4,
            id="profile-allow-repeated",
        ),
        pytest.param(
            KID + "    block: [a.com]\n    allow: [b.com, a.com]\n",
            "profiles.kid.allow",
            '"a.com" is both blocked (block:) and allowed here',
            5,
            id="profile-block-and-allow",
        ),
        pytest.param(
            "categories:\n  homework: [x.txt]\n" + KID + "    categories: [homewrk]\n",
            "profiles.kid.categories[0]",
            f'"homewrk" is not a category; valid categories: {CATEGORIES_TEXT}, homework '
            "(did you mean 'homework'?)",
            6,
            id="profile-category-names-own-categories",
        ),
        pytest.param(
            KID + "    safesearch: yes\n",
            "profiles.kid.safesearch",
            '"yes" is not true or false',
            4,
            id="profile-safesearch",
        ),
        pytest.param(
            KID + "    timezone: Asia/Saigon_\n",
            "profiles.kid.timezone",
            '"Asia/Saigon_" is not an IANA time zone like Europe/Berlin or Asia/Ho_Chi_Minh '
            '(did you mean "Asia/Ho_Chi_Minh", UTC+7 now?)',
            4,
            id="profile-timezone",
        ),
        pytest.param(
            "server:\n  timezone: Mars/Olympus\n",
            "server.timezone",
            '"Mars/Olympus" is not an IANA time zone like Europe/Berlin or Asia/Ho_Chi_Minh',
            2,
            id="server-timezone",
        ),
        pytest.param(
            "server:\n  timezone: ../../etc/passwd\n",
            "server.timezone",
            '"../../etc/passwd" is not an IANA time zone like Europe/Berlin or Asia/Ho_Chi_Minh',
            2,
            id="server-timezone-path",
        ),
        pytest.param(
            RULE.format('days: [mon], from: "08:00", to: "25:00", block: all'),
            "profiles.kid.schedules[0].to",
            '"25:00" is not a time HH:MM (00:00 to 23:59, or 24:00 as an end)',
            5,
            id="schedule-to",
        ),
        pytest.param(
            RULE.format('days: [mon], from: "24:00", to: "06:00", block: all'),
            "profiles.kid.schedules[0].from",
            '"24:00" is only allowed as an end time; a start is 00:00 to 23:59',
            5,
            id="schedule-from-24",
        ),
        pytest.param(
            RULE.format('days: [mon, funday], from: "08:00", to: "09:00", block: all'),
            "profiles.kid.schedules[0].days[1]",
            '"funday" is not a day; valid days: mon, tue, wed, thu, fri, sat, sun; ranges like '
            "mon-fri or fri-mon; daily, all, weekdays, weekends",
            5,
            id="schedule-day",
        ),
        pytest.param(
            RULE.format('days: [], from: "08:00", to: "09:00", block: all'),
            "profiles.kid.schedules[0].days",
            "needs at least one day, e.g. [mon-fri] or daily",
            5,
            id="schedule-no-days",
        ),
        pytest.param(
            RULE.format('from: "08:00", to: "09:00", block: all'),
            "profiles.kid.schedules[0]",
            "needs days, e.g. days: [mon-fri]",
            5,
            id="schedule-days-missing",
        ),
        pytest.param(
            RULE.format('days: [mon], to: "09:00", block: all'),
            "profiles.kid.schedules[0]",
            'needs from, e.g. from: "21:00"',
            5,
            id="schedule-from-missing",
        ),
        pytest.param(
            RULE.format(OK_RULE),
            "profiles.kid.schedules[0]",
            ACTION,
            5,
            id="schedule-no-action",
        ),
        pytest.param(
            RULE.format(OK_RULE + ", block: [], allow_categories: []"),
            "profiles.kid.schedules[0]",
            ACTION,
            5,
            id="schedule-empty-actions",
        ),
        pytest.param(
            RULE.format(OK_RULE + ", block: {games: true}"),
            "profiles.kid.schedules[0].block",
            "expected a list of categories, not a mapping",
            5,
            id="schedule-block-mapping",
        ),
        pytest.param(
            RULE.format(OK_RULE + ", block: all, allow_categories: [games]"),
            "profiles.kid.schedules[0].allow_categories",
            "cannot be combined with block: all, which blocks every category; use allow: for "
            "domains to keep",
            5,
            id="schedule-block-all-and-allow-categories",
        ),
        pytest.param(
            RULE.format(OK_RULE + ", block: [games], allow: [a.com]"),
            "profiles.kid.schedules[0].allow",
            "lists domains still answered during block: all, so it needs block: all; a "
            "profile's own allow: list applies at all times",
            5,
            id="schedule-allow-without-block-all",
        ),
        pytest.param(
            RULE.format(OK_RULE + ", block: [games, video], allow_categories: [games]"),
            "profiles.kid.schedules[0].allow_categories",
            "'games' is both blocked and allowed by this rule",
            5,
            id="schedule-block-and-allow-same",
        ),
        pytest.param(
            RULE.format(OK_RULE + ", allow_categories: [phishing]"),
            "profiles.kid.schedules[0].allow_categories",
            "'phishing' is always blocked and cannot be allowed",
            5,
            id="schedule-allow-always-blocked",
        ),
        pytest.param(
            RULE.format(OK_RULE + ", block: [all, games]"),
            "profiles.kid.schedules[0].block[0]",
            '"all" blocks everything only on its own: write block: all',
            5,
            id="schedule-all-among-categories",
        ),
        pytest.param(
            RULE.format(OK_RULE + ", block: [gamez]"),
            "profiles.kid.schedules[0].block[0]",
            f'"gamez" is not a category; valid categories: {CATEGORIES_TEXT} '
            "(did you mean 'games'?)",
            5,
            id="schedule-unknown-category",
        ),
        pytest.param(
            RULE.format(OK_RULE + ", block: all, allow: [-bad-]"),
            "profiles.kid.schedules[0].allow[0]",
            '"-bad-" is not a domain name like example.com',
            5,
            id="schedule-allow-domain",
        ),
        pytest.param(
            RULE.format(OK_RULE + ", block: all, except: holidays"),
            "profiles.kid.schedules[0].except",
            '"holidays" is not a calendar; none are defined under calendars:',
            5,
            id="schedule-except-no-calendars",
        ),
        pytest.param(
            "calendars: {terms: [], breaks: []}\n"
            + RULE.format(OK_RULE + ", block: all, except: holidays"),
            "profiles.kid.schedules[0].except",
            '"holidays" is not a calendar; calendars: terms, breaks',
            6,
            id="schedule-except-unknown-calendar",
        ),
        pytest.param(
            RULE.format(OK_RULE + ", block: all, until: '10:00'"),
            "profiles.kid.schedules[0].until",
            "unknown key 'until'; valid keys: name, days, from, to, block, allow, "
            "allow_categories, only, except",
            5,
            id="schedule-unknown-key",
        ),
        pytest.param(
            KID + "    schedules:\n      -\n",
            "profiles.kid.schedules[0]",
            "is empty; expected a schedule rule with days, from and to",
            5,
            id="schedule-empty",
        ),
        pytest.param(
            KID + "    schedules: [bedtime]\n",
            "profiles.kid.schedules[0]",
            "expected a mapping with keys name, days, from, to, block, allow, allow_categories, "
            "only, except, not a single value",
            4,
            id="schedule-not-a-mapping",
        ),
        pytest.param(
            "calendars:\n  holidays: ['2026-13-01']\n",
            "calendars.holidays[0]",
            '"2026-13-01" is not a date YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD',
            2,
            id="calendar-date",
        ),
        pytest.param(
            "calendars:\n  holidays: ['2027-01-04..2026-12-24']\n",
            "calendars.holidays[0]",
            '"2027-01-04..2026-12-24" ends before it starts',
            2,
            id="calendar-backwards",
        ),
        pytest.param(
            "calendars:\n  holidays: ['2026-12-24', '2026-12-24']\n",
            "calendars.holidays[1]",
            '"2026-12-24" is listed twice (first on line 2)',
            2,
            id="calendar-repeated",
        ),
        pytest.param(
            "calendars:\n  'school holidays': []\n",
            "calendars.school holidays",
            "\"school holidays\" is not a calendar name (letters, digits, '-', '_' and '.', at "
            "most 64, starting with a letter or digit)",
            2,
            id="calendar-name",
        ),
        pytest.param(
            CLIENT.format("name: t, ip: 192.168.1.300, profile: kid"),
            "clients[0].ip",
            '"192.168.1.300" is not an IP address like 192.168.1.2 or fd00::2',
            3,
            id="client-ip",
        ),
        pytest.param(
            CLIENT.format("name: t, ip: 10.0.0.0/8, profile: kid"),
            "clients[0].ip",
            '"10.0.0.0/8" is not an IP address like 192.168.1.2 or fd00::2',
            3,
            id="client-ip-is-a-network",
        ),
        pytest.param(
            CLIENT.format("name: t, cidr: 10.0.0.0/33, profile: kid"),
            "clients[0].cidr",
            '"10.0.0.0/33" is not an IP address or network like 192.168.0.0/16 or fe80::/10',
            3,
            id="client-cidr",
        ),
        pytest.param(
            CLIENT.format('name: t, mac: "aa:bb:cc:dd:ee", profile: kid'),
            "clients[0].mac",
            '"aa:bb:cc:dd:ee" is not a MAC address like aa:bb:cc:dd:ee:ff',
            3,
            id="client-mac-short",
        ),
        pytest.param(
            CLIENT.format('name: t, mac: "aabb:cc:dd:ee:ff", profile: kid'),
            "clients[0].mac",
            '"aabb:cc:dd:ee:ff" is not a MAC address like aa:bb:cc:dd:ee:ff',
            3,
            id="client-mac-groups",
        ),
        pytest.param(
            CLIENT.format("name: t, ip: 10.0.0.1, profile: mum"),
            "clients[0].profile",
            '"mum" is not a profile; profiles: kid, household',
            3,
            id="client-unknown-profile",
        ),
        pytest.param(
            "clients:\n  - {name: t, ip: 10.0.0.1, profile: kid}\n",
            "clients[0].profile",
            '"kid" is not a profile; profiles: household',
            2,
            id="client-profile-of-the-defaults",
        ),
        pytest.param(
            CLIENT.format("name: t, profile: kid"),
            "clients[0]",
            "needs one of ip, cidr or mac",
            3,
            id="client-no-address",
        ),
        pytest.param(
            CLIENT.format("name: t, ip: 10.0.0.1, mac: 'aa:bb:cc:dd:ee:ff', profile: kid"),
            "clients[0]",
            "has ip and mac; give exactly one of ip, cidr or mac (a device with several "
            "addresses gets one entry each)",
            3,
            id="client-two-addresses",
        ),
        pytest.param(
            CLIENT.format("ip: 10.0.0.1, profile: kid"),
            "clients[0]",
            "needs name: a name for the device or network",
            3,
            id="client-no-name",
        ),
        pytest.param(
            CLIENT.format("name: t, ip: 10.0.0.1"),
            "clients[0]",
            "needs profile: the profile this client gets",
            3,
            id="client-no-profile",
        ),
        pytest.param(
            CLIENT.format("name: t, ip: 10.0.0.1, profile: kid, os: ios"),
            "clients[0].os",
            "unknown key 'os'; valid keys: name, ip, cidr, mac, profile",
            3,
            id="client-unknown-key",
        ),
        pytest.param(
            "clients:\n  - tablet\n",
            "clients[0]",
            "expected a client like {name: tablet, ip: 192.168.1.23, profile: minh}, "
            "not a single value",
            2,
            id="client-not-a-mapping",
        ),
        pytest.param(
            "clients: {tablet: 10.0.0.1}\n",
            "clients",
            "expected a list of clients, not a mapping",
            1,
            id="clients-not-a-list",
        ),
        pytest.param(
            "profiles:\n  a: {age_band: adult}\n  b: {age_band: 9-12}\ndefault_profile: c\n",
            "default_profile",
            '"c" is not a profile; profiles: a, b, household',
            4,
            id="default-profile-unknown",
        ),
        pytest.param(
            "default_profile: guests\n",
            "default_profile",
            '"guests" is not a profile; profiles: household',
            1,
            id="default-profile-not-among-the-defaults",
        ),
        pytest.param(
            "blocking:\n  response: custom\n",
            "blocking.response",
            "custom needs blocking.custom_ips: the addresses of a block page, e.g. "
            "custom_ips: [192.168.1.2]",
            2,
            id="custom-without-ips",
        ),
        pytest.param(
            "blocking:\n  response: block-page\n",
            "blocking.response",
            '"block-page" is not one of nxdomain, null, refused, custom',
            2,
            id="response",
        ),
        pytest.param(
            "blocking:\n  custom_ips: [192.168.1.2, blockpage.lan]\n",
            "blocking.custom_ips[1]",
            '"blockpage.lan" is not an IP address like 192.168.1.2 or fd00::2',
            2,
            id="custom-ip",
        ),
        pytest.param(
            "blocking:\n  ttl: soon\n",
            "blocking.ttl",
            DURATION.format("soon"),
            2,
            id="ttl",
        ),
        pytest.param(
            "blocking:\n  bypass_protection: off\n",
            "blocking.bypass_protection",
            '"off" is not true or false',
            2,
            id="bypass-protection",
        ),
        pytest.param(
            "blocking:\n  ttl: 10s\n  timeout: 3\n",
            "blocking.timeout",
            "unknown key 'timeout'; valid keys: response, custom_ips, ttl, bypass_protection, "
            "cname_inspection, rebinding_protection, rebinding_allow, name_model ('timeout' "
            "belongs under upstreams: or lists:)",
            3,
            id="blocking-unknown-key",
        ),
    ],
)
def test_policy_problems(text: str, path: str, message: str, line: int) -> None:
    assert the_problem(text) == Problem(path, message, line)


def test_repeated_client_names_and_addresses_are_problems() -> None:
    problems = problems_of(
        """\
        profiles: {kid: {age_band: 9-12}}
        clients:
          - {name: tablet, mac: "aa:bb:cc:dd:ee:ff", profile: kid}
          - {name: tablet, mac: "AA-BB-CC-DD-EE-FF", profile: kid}
          - {name: laptop, ip: "fd00::1", profile: kid}
          - {name: phone, ip: "FD00:0::1", profile: kid}
          - {name: room, cidr: 10.6.0.0/16, profile: kid}
          - {name: room-2, cidr: 10.6.9.9/16, profile: kid}
        """
    )
    assert problems == [
        Problem("clients[1].name", '"tablet" is already the name of clients[0] on line 3', 4),
        Problem(
            "clients[1].mac", '"aa:bb:cc:dd:ee:ff" is already the mac of clients[0] on line 3', 4
        ),
        Problem("clients[3].ip", '"fd00::1" is already the ip of clients[2] on line 5', 6),
        Problem("clients[5].cidr", '"10.6.0.0/16" is already the cidr of clients[4] on line 7', 8),
    ]


def test_a_broken_profile_is_not_also_an_unknown_profile() -> None:
    problems = problems_of(
        "profiles:\n  kid: {age_band: 9-13}\nclients:\n  - {name: t, ip: 10.0.0.1, profile: kid}\n"
    )
    assert [p.path for p in problems] == ["profiles.kid.age_band"]


def test_every_policy_problem_is_reported_at_once() -> None:
    problems = problems_of(
        """\
        server: {timezone: Nowhere/Town}
        age_bands: {10-12: {}}
        profiles:
          kid:
            age_band: 9-13
            schedules:
              - {days: [mon], from: "08:00", to: "25:00", block: all}
          dad: {age_band: adult}
        clients:
          - {name: t, ip: 10.0.0.1, profile: mum}
        blocking: {response: custom}
        """
    )
    assert [(p.path, p.line) for p in problems] == [
        ("server.timezone", 1),
        ("age_bands.10-12", 2),
        ("profiles.kid.age_band", 5),
        ("profiles.kid.schedules[0].to", 7),
        ("clients[0].profile", 10),
        ("blocking.response", 11),
    ]


# The configuration the product was first described with, minus what this version does not read
# yet (DNS over HTTPS, rate_limit, alerts) and with a real schedule list for class-6a.
PRODUCT_EXAMPLE = """\
server:
  listen: ["0.0.0.0:53", "[::]:53"]        # UDP and TCP on each
  allow_clients: [127.0.0.0/8, ::1, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7, fe80::/10]
  timezone: Asia/Ho_Chi_Minh               # default for schedules
upstreams:
  servers: ["9.9.9.9", "1.1.1.1:53", "tcp://8.8.8.8", "tls://1.1.1.1#cloudflare-dns.com"]
  strategy: failover                       # or: fastest, round_robin
  timeout: 2s
  conditional: {home.arpa: 192.168.1.1}    # local names to the router
cache: {max_entries: 50000, serve_stale: 1d, prefetch: true}
categories:                                # sources per category; blocklists/ defaults apply
  gambling: [blocklists/gambling.txt, "https://example.org/gambling.txt"]
lists: {refresh: 24h, cache_dir: /var/lib/filterdns/lists}
age_bands: {}                              # optional overrides of the built-in table
profiles:
  minh:
    age_band: 9-12
    allow: [khanacademy.org, olm.vn]
    block: [roblox.com]
    schedules:
      - {name: bedtime, days: [sun, mon, tue, wed, thu], from: "21:00", to: "06:30",
         block: all, allow: [school.edu.vn]}
      - {name: school, days: [mon-fri], from: "07:30", to: "16:30", block: [games, social, video],
         except: school-holidays}
      - {name: weekend-games, days: [sat], from: "14:00", to: "17:00", allow_categories: [games]}
  class-6a: {age_band: 9-12, schedules: [{name: lessons, days: [mon-fri], from: "07:30",
             to: "11:30", block: [games, video], except: school-holidays}]}
  guests: {age_band: 13-15}
calendars:                                 # named date sets for schedule exceptions
  school-holidays: ["2026-12-24..2027-01-04", "2027-02-14..2027-02-22"]
clients:
  - {name: minh-tablet, mac: "aa:bb:cc:dd:ee:ff", profile: minh}
  - {name: minh-laptop, ip: 192.168.1.23, profile: minh}
  - {name: room-6a, cidr: 10.6.1.0/24, profile: class-6a}
default_profile: guests
blocking:
  response: nxdomain                       # or: null (0.0.0.0 / ::), refused, custom
  custom_ips: [192.168.1.2, "fd00::2"]     # with response: custom (a block page)
  ttl: 10s
  bypass_protection: true
log:
  database: /var/lib/filterdns/filterdns.db   # SQLite
  retention: 90d
  log_allowed: false                          # only blocked lookups by default
  anonymize_clients: false
"""


def test_the_product_example_loads() -> None:
    config = sut(PRODUCT_EXAMPLE)
    assert config.server.timezone == "Asia/Ho_Chi_Minh"
    assert config.age_bands == DEFAULTS.age_bands
    assert [p.name for p in config.profiles] == ["minh", "class-6a", "guests", "household"]
    minh = config.profile("minh")
    assert (minh.age_band, minh.allow, minh.block) == (
        "9-12",
        ("khanacademy.org", "olm.vn"),
        ("roblox.com",),
    )
    bedtime, school, games = minh.schedules
    assert (bedtime.block_all, bedtime.allow) == (True, ("school.edu.vn",))
    assert school.block == ("games", "social", "video")
    assert school.window.except_calendar == config.calendars[0]
    assert games.allow_categories == ("games",)
    assert [(s.name, s.line) for s in minh.schedules] == [
        ("bedtime", 21),
        ("school", 23),
        ("weekend-games", 25),
    ]
    assert config.profile("class-6a").schedules[0].window.except_calendar is not None
    assert config.calendars[0].name == "school-holidays"
    assert config.clients == (
        ClientConfig("minh-tablet", "minh", mac="aa:bb:cc:dd:ee:ff"),
        ClientConfig("minh-laptop", "minh", ip=ip("192.168.1.23")),
        ClientConfig("room-6a", "class-6a", cidr=net("10.6.1.0/24")),
    )
    assert config.default_profile == "guests"
    custom_ips = (ip("192.168.1.2"), ip("fd00::2"))
    assert config.blocking == BlockingConfig(BlockResponse.NXDOMAIN, custom_ips, 10, True)


def test_every_choice_tuple_is_documented_in_one_order() -> None:
    assert BANDS == ("under-9", "9-12", "13-15", "16-17", "adult")
    assert BLOCK_RESPONSES == ("nxdomain", "null", "refused", "custom")
    assert YOUTUBE_LEVELS == ("strict", "moderate", "off")


# Reports and alerts


def test_report_and_alerts() -> None:
    config = sut(
        """\
        report: {lang: vi, footer: "Gọi 111 để báo cáo nội dung độc hại"}
        alerts:
          - {categories: [adult, bypass], threshold: 5, within: 10m, webhook: "https://h.test/x"}
          - {name: games-binge, categories: [games], per_profile: false, command: "notify me",
             timeout: 2s, retries: 0}
        """
    )
    assert (config.report.lang, config.report.footer) == (
        "vi",
        "Gọi 111 để báo cáo nội dung độc hại",
    )
    first, second = config.alerts
    assert (first.name, first.categories, first.threshold, first.within) == (
        "alert 1", ("adult", "bypass"), 5, 600.0,
    )  # fmt: skip
    assert (second.name, second.per_profile, second.command, second.timeout, second.retries) == (
        "games-binge", False, "notify me", 2.0, 0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        pytest.param("report: {lang: fr}", "report.lang", '"fr" is not one of en, vi', id="lang"),
        pytest.param(
            "alerts: [{categories: [adult]}]",
            "alerts[0]",
            "needs an action: command, webhook or both",
            id="no-action",
        ),
        pytest.param(
            "alerts: [{command: x}]",
            "alerts[0]",
            "needs categories, e.g. categories: [adult, bypass]",
            id="no-categories",
        ),
        pytest.param(
            "alerts: [{categories: [adlt], command: x}]",
            "alerts[0].categories[0]",
            '"adlt" is not a category',
            id="unknown-category",
        ),
        pytest.param(
            "alerts: [{categories: [adult], webhook: 'ftp://x'}]",
            "alerts[0].webhook",
            '"ftp://x" is not an http:// or https:// URL',
            id="webhook-url",
        ),
    ],
)
def test_bad_report_and_alerts(text: str, path: str, message: str) -> None:
    problem = the_problem(text)
    assert (problem.path, problem.line) == (path, 1)
    assert problem.message.startswith(message)


def test_rate_limit_defaults_to_50_a_second_with_bursts_of_200_and_null_turns_it_off() -> None:
    assert load_config_text("cache: {}\n").server.rate_limit == RateLimit(50, 200)
    assert load_config_text("server:\n  rate_limit: {burst: 5}\n").server.rate_limit == (
        RateLimit(50, 5)
    )
    assert load_config_text("server:\n  rate_limit: null\n").server.rate_limit is None


# Names people write: letters of any script, display names, every problem at once


def test_a_profile_name_may_be_vietnamese_and_carry_a_display_name() -> None:
    text = (
        'profiles:\n  Bình: {age_band: 9-12, display_name: "Bình (lớp 6A)"}\n'
        "clients:\n  - {name: máy tính bảng, ip: 10.0.0.5, profile: Bình}\n"
        "default_profile: Bình\n"
    )
    decomposed = unicodedata.normalize("NFD", text)  # as some editors save it
    for config in (sut(text), sut(decomposed)):
        assert config.profile("Bình").display_name == "Bình (lớp 6A)"
        assert config.display_name("Bình") == "Bình (lớp 6A)"
        assert config.display_name("household") == "household"
        assert config.clients[0].profile == config.default_profile == "Bình"


@pytest.mark.parametrize(
    "value",
    [pytest.param('""', id="empty"), pytest.param('"a\\tb"', id="control"),
     pytest.param('"' + "x" * 65 + '"', id="too-long")],
)  # fmt: skip
def test_a_display_name_is_short_printable_text(value: str) -> None:
    (problem,) = problems_of(f"profiles:\n  kid: {{age_band: 9-12, display_name: {value}}}\n")
    assert problem.path == "profiles.kid.display_name"


def test_a_bad_profile_name_does_not_hide_what_is_wrong_inside() -> None:
    problems = problems_of(
        "profiles:\n"
        "  bố mẹ:\n"
        "    age_band: 9-13\n"
        "    schedules:\n"
        '      - {days: [mon], from: "08:00", to: "25:00", block: all}\n'
        "clients:\n  - {name: phone, ip: 10.0.0.9, profile: bố mẹ}\n"
    )
    assert [(p.path, p.line) for p in problems] == [
        ("profiles.bố mẹ", 2),
        ("profiles.bố mẹ.age_band", 3),
        ("profiles.bố mẹ.schedules[0].to", 5),
    ]  # and the client naming it is not also "not a profile"


def test_an_unknown_age_band_still_has_its_overrides_checked() -> None:
    problems = problems_of("age_bands:\n  10-12:\n    youtube: sometimes\n    colour: red\n")
    assert [(p.path, p.line) for p in problems] == [
        ("age_bands.10-12", 2),
        ("age_bands.10-12.youtube", 3),
        ("age_bands.10-12.colour", 4),
    ]


@pytest.mark.parametrize(
    ("workers", "cpus", "expected"),
    [
        pytest.param(1, 4, 1, id="one"),
        pytest.param(3, 1, 3, id="number-as-given"),
        pytest.param("auto", 1, 1, id="auto-one-cpu"),
        pytest.param("auto", 4, 4, id="auto-four-cpus"),
        pytest.param("auto", 32, 8, id="auto-at-most-eight"),
    ],
)
def test_worker_count_of_auto_is_the_usable_cpus_at_most_eight(
    workers: int | Literal["auto"], cpus: int, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cpus)))
    assert ServerConfig(workers=workers).worker_count() == expected
