"""`filterdns report` on a PostgreSQL log many instances write: every instance's lookups, or one
instance's with `--instance`, and the same figures as the SQLite log holding the same rows."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from filterdns.cli.main import main
from filterdns.errors import FilterDnsError
from filterdns.querylog import pgschema
from filterdns.querylog.report.collect import read_report
from tests.fakes.upstream import FakeUpstream
from tests.integration import test_report as sqlite_report
from tests.integration.harness import running_proxy
from tests.integration.test_pg_log import blocked, proxy_config, written


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream({("example.com", "A"): ["93.184.216.34"]}) as fake:
        yield fake


def report_json(
    capsys: pytest.CaptureFixture[str], config: Path, *options: str
) -> dict[str, object]:
    """What `filterdns -c CONFIG report --json OPTIONS` prints."""
    capsys.readouterr()
    assert main(["-c", str(config), "report", "--json", *options]) == 0
    data: dict[str, object] = json.loads(capsys.readouterr().out)
    return data


async def test_report_counts_every_instance_or_the_one_asked_for(
    upstream: FakeUpstream, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with (
        running_proxy(proxy_config(upstream, url, "a")) as a,
        running_proxy(proxy_config(upstream, url, "b")) as b,
    ):
        await blocked(a, "casino.example")
        await blocked(b, "casino.example")
        await blocked(b, "poker.example")
        await written(a.app.querylog, 1)
        await written(b.app.querylog, 2)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(pgschema.INSERT_DROP, ("b", a.app.wall_clock(), 4, "queue full"))
    config = tmp_path / "config.yaml"
    config.write_text(proxy_config(upstream, url, "a"))

    every = report_json(capsys, config)
    assert every["instance"] is None
    assert every["blocked_total"] == 3
    assert every["top_names"] == [
        {"name": "casino.example", "category": None, "count": 2},
        {"name": "poker.example", "category": None, "count": 1},
    ]
    assert every["drops"] == 4

    only_a = report_json(capsys, config, "--instance", "a")
    assert only_a["instance"] == "a"
    assert only_a["blocked_total"] == 1
    assert only_a["profiles"] == {"minh": {"blocked": 1, "categories": {"(none)": 1}}}
    assert only_a["drops"] == 0
    assert report_json(capsys, config, "--instance", "b")["blocked_total"] == 2
    assert report_json(capsys, config, "--instance", "nowhere")["blocked_total"] == 0

    assert main(["-c", str(config), "report", "--instance", "no such"]) == 2
    assert '--instance: "no such" is not an instance name' in capsys.readouterr().out
    # The web app's home page counts today's blocks of every site from the same log.
    from filterdns.config import load_config
    from filterdns.web.home import home_data

    _states, counts = home_data(load_config(config), ["minh"], a.app.wall_clock())
    assert counts == {"minh": 3}
    # A device's own blocked names (the request page) are this instance's rows only: private
    # addresses repeat from one school to the next.
    from filterdns.web.lookups import blocked_for

    at_a = blocked_for(load_config(config), "127.0.0.1", 0.0)
    assert [(n.name, n.count) for n in at_a] == [("casino.example", 1)]
    config.write_text(proxy_config(upstream, url, "b"))
    at_b = blocked_for(load_config(config), "127.0.0.1", 0.0)
    assert sorted((n.name, n.count) for n in at_b) == [("casino.example", 1), ("poker.example", 1)]


def copy_to_postgres(database: Path, url: str, instances: tuple[str, ...]) -> None:
    """The rows of the SQLite log at `database`, once per instance, into a fresh PostgreSQL
    log (its schema and the day partitions the rows need)."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        queries = db.execute(
            f"SELECT {', '.join(pgschema.QUERY_COLUMNS[1:])} FROM queries"
        ).fetchall()
        drops = db.execute("SELECT ts, count, reason FROM drops").fetchall()
        alerts = db.execute(
            "SELECT ts, rule, profile, categories, count, window, message, delivered, error"
            " FROM alerts"
        ).fetchall()
    columns = ", ".join(pgschema.QUERY_COLUMNS)
    marks = ", ".join(["%s"] * len(pgschema.QUERY_COLUMNS))
    with psycopg.connect(url, autocommit=True) as conn:
        for version in sorted(pgschema.MIGRATIONS):
            for statement in pgschema.MIGRATIONS[version]:
                conn.execute(statement)  # type: ignore[arg-type]
        for day in sorted({pgschema.day_of(row[0]) for row in queries}):
            conn.execute(pgschema.create_partition(day))  # type: ignore[arg-type]
        for instance in instances:
            with conn.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO queries ({columns}) VALUES ({marks})",  # type: ignore[arg-type]
                    [(instance, *row) for row in queries],
                )
                cursor.executemany(pgschema.INSERT_DROP, [(instance, *row) for row in drops])
                cursor.executemany(pgschema.INSERT_ALERT, [(instance, *row) for row in alerts])


def test_postgres_gives_the_figures_sqlite_gives(tmp_path: Path, url: str) -> None:
    database = tmp_path / "filterdns.db"
    with contextlib.closing(sqlite3.connect(database)) as db:
        sqlite_report.populate(db)
    copy_to_postgres(database, url, ("a", "b"))
    period = {"since": sqlite_report.at(-1, 0), "until": sqlite_report.at(3, 0)}
    for profile, client in [(None, None), ("lan", None), (None, "minh-tablet")]:
        on_sqlite = read_report(
            database, **period, profile=profile, client=client,
            config=sqlite_report.make_config(database),
        ).to_json()  # fmt: skip
        pg_config = sqlite_report.make_config(url)  # type: ignore[arg-type]
        one = read_report(
            database, **period, profile=profile, client=client, config=pg_config, instance="a"
        ).to_json()
        assert one == {**on_sqlite, "instance": "a"}
        both = read_report(
            database, **period, profile=profile, client=client, config=pg_config
        ).to_json()
        assert both["blocked_total"] == 2 * int(str(on_sqlite["blocked_total"]))
        assert both["drops"] == 2 * int(str(on_sqlite["drops"]))
        assert len(list(both["alerts"])) == 2 * len(list(on_sqlite["alerts"]))  # type: ignore[call-overload]
    assert on_sqlite["instance"] is None and on_sqlite["blocked_total"] == 12


def test_an_instance_filter_on_the_sqlite_log_says_it_needs_postgresql(tmp_path: Path) -> None:
    database = tmp_path / "filterdns.db"
    with contextlib.closing(sqlite3.connect(database)) as db:
        sqlite_report.populate(db)
    with pytest.raises(FilterDnsError, match=r"^an instance filter needs the query log on Postgre"):
        read_report(
            database, since=0, until=1, profile=None, client=None,
            config=sqlite_report.make_config(database), instance="a",
        )  # fmt: skip


def test_a_database_no_server_wrote_yet_reports_nothing(tmp_path: Path, url: str) -> None:
    config = sqlite_report.make_config(url)  # type: ignore[arg-type]
    found = read_report(
        tmp_path / "unused.db", since=0, until=2e9, profile=None, client=None, config=config
    )
    assert (found.blocked_total, found.drops, found.alerts) == (0, 0, [])


def add_edge_rows(database: Path) -> None:
    """Rows where counting by minute or keeping only the top names in the database could go
    wrong: 0.3 s before a local hour, on both sides of minh's bedtime start, and 25 names blocked
    once each, so the 20th place is a tie."""
    start = 22 if datetime.fromtimestamp(sqlite_report.at(0, 12), sqlite_report.TZ).weekday() in (
        4, 5
    ) else 21  # fmt: skip
    with contextlib.closing(sqlite3.connect(database)) as db:
        insert = sqlite_report.insert
        insert(db, sqlite_report.at(0, 7) - 0.3, sqlite_report.LAN, "early.example", "games")
        insert(db, sqlite_report.at(0, start) - 0.4, sqlite_report.MINH, "late.example", "games")
        insert(db, sqlite_report.at(0, start), sqlite_report.MINH, "late.example", "games")
        for i in range(25):
            insert(db, sqlite_report.at(1, 13, i), sqlite_report.LAN, f"tie-{i:02}.example", None)


def test_postgres_counts_the_edges_as_sqlite_and_row_by_row_do(tmp_path: Path, url: str) -> None:
    database = tmp_path / "filterdns.db"
    with contextlib.closing(sqlite3.connect(database)) as db:
        sqlite_report.populate(db)
    period = {"since": sqlite_report.at(-1, 0), "until": sqlite_report.at(3, 0)}
    before = read_report(
        database, **period, profile=None, client=None, config=sqlite_report.make_config(database)
    )
    add_edge_rows(database)
    copy_to_postgres(database, url, ("a",))
    on_sqlite = read_report(
        database, **period, profile=None, client=None, config=sqlite_report.make_config(database)
    )
    pg_config = sqlite_report.make_config(url)  # type: ignore[arg-type]
    on_pg = read_report(database, **period, profile=None, client=None, config=pg_config)
    assert on_pg.to_json() == {**on_sqlite.to_json(), "instance": None}

    day0 = datetime.fromtimestamp(sqlite_report.at(0, 12), sqlite_report.TZ).weekday()
    assert on_sqlite.heatmap[day0][6] == before.heatmap[day0][6] + 1  # 06:59:59.7
    assert on_sqlite.heatmap[day0][7] == before.heatmap[day0][7]
    lookups, blocked = before.bedtime["minh"]
    assert on_sqlite.bedtime["minh"] == (lookups + 1, blocked + 1)  # the one at the start
    with contextlib.closing(sqlite3.connect(database)) as db:
        counts = db.execute(
            "SELECT name, COUNT(*) FROM queries WHERE kind = 'blocked' AND ts >= ? AND ts < ?"
            " GROUP BY name",
            (period["since"], period["until"]),
        ).fetchall()
    expected = sorted(counts, key=lambda row: (-row[1], row[0]))[:20]
    assert [(top.name, top.count) for top in on_sqlite.top_names] == expected
    assert expected[-1][1] == 1 and len(counts) > 20
