"""The configuration loader: defaults, every value type and its message, every problem's line."""

from __future__ import annotations

import ipaddress
import textwrap
from collections.abc import Callable
from dataclasses import replace
from importlib import resources
from operator import attrgetter
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filterdns import config as config_module
from filterdns.config import (
    SECTIONS,
    CacheConfig,
    Config,
    ListenAddress,
    LogConfig,
    ServerConfig,
    UpstreamsConfig,
    UpstreamServer,
    default_config,
    find_config,
    load_config,
    load_config_text,
    parse_upstream,
)
from filterdns.configschema import compose
from filterdns.errors import ConfigError, Problem

REPO = Path(__file__).resolve().parents[2]
STATE = Path("/srv/filterdns-state")
DEFAULTS = default_config(is_root=False, state_dir=STATE)
DEFAULT_YAML = resources.files("filterdns").joinpath("default.yaml").read_text(encoding="utf-8")


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
    """The keys set in each section of a YAML document, in file order."""
    root, syntax = compose(text)
    assert syntax is None and root is not None, syntax
    return {
        section.value: tuple(key.value for key, _ in value.value) for section, value in root.value
    }


def test_default_yaml_sets_every_key() -> None:
    assert keys_of(DEFAULT_YAML) == {**SECTIONS, "categories": ()}


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
        pytest.param("", id="empty"),
        pytest.param("\n\n", id="blank-lines"),
        pytest.param("# nothing but a comment\n", id="comment"),
        pytest.param("---\n", id="document-start"),
        pytest.param("~\n", id="null"),
        pytest.param("server:\nupstreams:\ncache:\nlog:\n", id="empty-sections"),
        pytest.param("cache: {}\nlog: {}\n", id="empty-mappings"),
    ],
)
def test_an_empty_file_is_the_defaults(text: str) -> None:
    assert sut(text) == replace(DEFAULTS, source="<test>")


@pytest.mark.usefixtures("no_state_env")
def test_missing_keys_take_default_config_when_no_defaults_are_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(config_module.os, "geteuid", lambda: 1000)
    assert load_config_text("") == replace(default_config(), source="<config>")


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
    ],
)
def test_values_are_read(text: str, attribute: str, expected: object) -> None:
    assert attrgetter(attribute)(sut(text)) == expected


DURATION = '"{}" is not a duration like 10s, 5m, 24h or 90d'


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
            "server: 5\n",
            "server",
            "expected a mapping with keys listen, allow_clients, tcp_idle_timeout, "
            "max_tcp_connections, shutdown_grace, not a single value",
            1,
            id="section-scalar",
        ),
        pytest.param(
            "log:\n  - database\n",
            "log",
            "expected a mapping with keys database, retention, log_allowed, "
            "anonymize_clients, not a list",
            2,
            id="section-list",
        ),
        pytest.param(
            "- server\n",
            "",
            "expected a mapping with keys server, upstreams, cache, log, lists, categories, "
            "not a list",
            1,
            id="top-level-list",
        ),
        pytest.param(
            "just words\n",
            "",
            "expected a mapping with keys server, upstreams, cache, log, lists, categories, "
            "not a single value",
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
    ],
)
def test_bad_values_name_the_problem_and_its_line(
    text: str, path: str, message: str, line: int
) -> None:
    assert the_problem(text) == Problem(path, message, line)


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
            "unknown key 'colour'; valid keys: database, retention, log_allowed, anonymize_clients",
            2,
            id="nothing-close",
        ),
        pytest.param(
            "upstreams:\n  conditonal: {}\n",
            "upstreams.conditonal",
            "unknown key 'conditonal'; valid keys: servers, strategy, timeout, backoff, "
            "conditional (did you mean 'conditional'?)",
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
            "unknown key 'servers'; valid keys: server, upstreams, cache, log, lists, categories "
            "(did you mean 'server'?) ('servers' belongs under upstreams:)",
            1,
            id="top-level-key-of-a-section",
        ),
        pytest.param(
            "server:\n  listen: ['127.0.0.1:53']\n  upstreams: {}\n",
            "server.upstreams",
            "unknown key 'upstreams'; valid keys: listen, allow_clients, "
            "tcp_idle_timeout, max_tcp_connections, shutdown_grace ('upstreams' is a "
            "top-level section; check the indentation)",
            3,
            id="indented-section",
        ),
        pytest.param(
            "profiles:\n  minh: {age_band: 9-12}\n",
            "profiles",
            "unknown key 'profiles'; valid keys: server, upstreams, cache, log, lists, categories "
            "(planned, not supported by this version yet)",
            1,
            id="planned-section",
        ),
        pytest.param(
            "server:\n  rate_limit: {per_client_qps: 50}\n",
            "server.rate_limit",
            "unknown key 'rate_limit'; valid keys: listen, allow_clients, "
            "tcp_idle_timeout, max_tcp_connections, shutdown_grace "
            "(planned, not supported by this version yet)",
            2,
            id="planned-key",
        ),
        pytest.param(
            "<<: {cache: {}}\n",
            "<<",
            "unknown key '<<'; valid keys: server, upstreams, cache, log, lists, categories",
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
profiles: {}
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
        ("profiles", 15),
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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "https://dns.quad9.net/dns-query",
            "DNS over HTTPS is not supported yet; use tls://",
            id="doh",
        ),
        pytest.param(
            "quic://1.1.1.1",
            'unknown scheme "quic://"; use udp://, tcp:// or tls://',
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
            "only tls:// takes a server name after '#', not udp://",
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
            "DNS over HTTPS is not supported yet; use tls://",
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
    assert documented.pop("categories")  # an example of each kind of source
    assert documented == SECTIONS


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

KEYS = [key for keys in SECTIONS.values() for key in keys] + [*SECTIONS, "typo", "<<"]
SCALARS = st.one_of(
    st.text(max_size=12),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.sampled_from(["9.9.9.9", "tls://1.1.1.1#a.b", "[::1]:53", "10s", "1x", "fastest", "::1"]),
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
            "cryptojacking, stalkerware",
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
    ],
)
def test_bad_categories_and_lists(text: str, path: str, message: str, line: int) -> None:
    assert the_problem(text) == Problem(path, message, line)
