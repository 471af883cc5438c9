"""A PostgreSQL `log.database` and `server.instance` in the configuration, and the pure parts of
the PostgreSQL log: its day partitions and its schema version check."""

from __future__ import annotations

import calendar
import socket
import textwrap
from pathlib import Path

import pytest

from filterdns.config import default_config, load_config_text
from filterdns.config.server import host_name
from filterdns.errors import ConfigError, Problem
from filterdns.querylog import pgschema
from filterdns.querylog.dbfile import SchemaError
from filterdns.querylog.pgconn import check_version, where

STATE = Path("/srv/filterdns-state")
DEFAULTS = default_config(is_root=False, state_dir=STATE)


def sut(text: str) -> object:
    return load_config_text(textwrap.dedent(text), source="<test>", defaults=DEFAULTS)


def the_problem(text: str) -> Problem:
    with pytest.raises(ConfigError) as caught:
        sut(text)
    (problem,) = caught.value.problems
    return problem


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://filterdns@db.school.example/filterdns",
        "postgres://filterdns@10.0.0.5:5433/log",
        "postgresql://filterdns@/filterdns?host=/run/postgresql",
        "postgresql://db.example/filterdns?sslmode=verify-full",
    ],
)
def test_a_postgresql_url_sends_the_log_there_and_keeps_the_sqlite_file(url: str) -> None:
    config = load_config_text(f'log: {{database: "{url}"}}\n', defaults=DEFAULTS)
    assert config.log.url == url
    assert config.log.database == STATE / "filterdns.db"  # grants and web accounts stay here


def test_a_path_is_sqlite_as_before() -> None:
    config = load_config_text("log: {database: /var/lib/x/log.db}\n", defaults=DEFAULTS)
    assert config.log.url is None
    assert config.log.database == Path("/var/lib/x/log.db")
    assert DEFAULTS.log.url is None


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://filterdns:s3cret@db.example/filterdns",
        "postgresql://filterdns@db.example/filterdns?password=s3cret",
    ],
)
def test_a_password_in_the_url_is_refused_with_where_it_belongs(url: str) -> None:
    problem = the_problem(f'log: {{database: "{url}"}}\n')
    assert problem.path == "log.database"
    assert "password" in problem.message
    assert "~/.pgpass" in problem.message and "PGPASSFILE" in problem.message
    assert "peer" in problem.message
    assert "s3cret" not in problem.message  # never repeated in a message


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://filterdns@db.example", "names no database"),
        ("postgresql://filterdns@db.example/", "names no database"),
        ("mysql://filterdns@db.example/log", "postgresql://user@host/db"),
        ("postgresql://filterdns@db.example:99999/log", "not a valid URL"),
        ("postgresql:///filterdns", "names no host"),
    ],
)
def test_a_bad_url_is_one_clear_problem(url: str, says: str) -> None:
    problem = the_problem(f'log: {{database: "{url}"}}\n')
    assert problem.path == "log.database"
    assert says in problem.message


def test_the_instance_names_this_server_in_shared_rows() -> None:
    config = load_config_text("server: {instance: school-12.north_a}\n", defaults=DEFAULTS)
    assert config.server.instance == "school-12.north_a"
    assert config.server.instance_name() == "school-12.north_a"


def test_without_an_instance_the_host_name_is_used() -> None:
    assert DEFAULTS.server.instance is None
    assert DEFAULTS.server.instance_name() == host_name()
    if len(socket.gethostname()) <= 64 and socket.gethostname().replace("-", "").isalnum():
        assert host_name() == socket.gethostname()


@pytest.mark.parametrize("name", ["", "has space", "x" * 65, "école", "a/b"])
def test_a_bad_instance_name_is_refused(name: str) -> None:
    problem = the_problem(f'server: {{instance: "{name}"}}\n')
    assert problem.path == "server.instance"
    assert "letters, digits" in problem.message or not name


def test_partitions_are_named_by_their_utc_day_and_back() -> None:
    ts = calendar.timegm((2026, 11, 30, 23, 59, 59, 0, 0, 0))
    day = pgschema.day_of(ts)
    assert day == calendar.timegm((2026, 11, 30, 0, 0, 0, 0, 0, 0))
    assert pgschema.partition_name(day) == "queries_p20261130"
    assert pgschema.partition_day("queries_p20261130") == day
    assert pgschema.partition_day("queries_p20261331") is None
    assert pgschema.partition_day("queries") is None
    assert pgschema.ahead(ts) == [day, day + 86400]
    assert f"FROM ({day}) TO ({day + 86400})" in pgschema.create_partition(day)


def test_only_partitions_whose_whole_day_is_past_the_cutoff_expire() -> None:
    names = ["queries_p20261128", "queries_p20261130", "queries_p20261129", "other"]
    cutoff = calendar.timegm((2026, 11, 30, 6, 0, 0, 0, 0, 0))
    assert pgschema.expired(names, cutoff) == ["queries_p20261128", "queries_p20261129"]
    assert pgschema.expired(names, cutoff - 7 * 3600) == ["queries_p20261128"]


def test_the_stored_schema_version_is_checked() -> None:
    url = "postgresql://filterdns@db.example/log?sslmode=require"
    assert check_version(url, None) == 0
    assert check_version(url, str(pgschema.PG_SCHEMA_VERSION)) == pgschema.PG_SCHEMA_VERSION
    with pytest.raises(SchemaError, match="newer than this filterdns") as caught:
        check_version(url, str(pgschema.PG_SCHEMA_VERSION + 1))
    assert "sslmode" not in str(caught.value)
    assert where(url) == "postgresql://filterdns@db.example/log"
    with pytest.raises(SchemaError, match="unreadable"):
        check_version(url, "x")
