"""The category lists as a whole: sources resolved, parsed, indexed, persisted, refreshed."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from filterdns.cli.main import main
from filterdns.config import DEFAULT_CATEGORIES, MODEL_CATEGORIES, ListsConfig
from filterdns.lists.builder import ChildBuilder
from filterdns.lists.cachedir import BUILDING_FILE, INDEX_FILE
from filterdns.lists.catalog import ListSet, resolve_sources
from filterdns.lists.index import DomainIndex
from filterdns.lists.shipped import CATEGORIES, SHIPPED
from filterdns.lists.sources import copy_path
from tests.fakes.http import ListServer, Page, list_server
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import config_for, running_proxy

HOSTS = b"# a hosts file\n0.0.0.0 casino.example\n0.0.0.0 poker.example casino.example\n"
ADBLOCK = b"! adblock\n||roulette.example^\n@@||fair.roulette.example^\nexample.org##.ad\n"


@pytest.fixture
def server() -> Iterator[ListServer]:
    with list_server() as running:
        yield running


def only(category: str, *sources: str) -> list[tuple[str, str]]:
    return [(category, source) for source in sources]


def categories_of(listset: ListSet, name: str) -> set[tuple[str, bool]]:
    index = listset.index
    return {
        (index.lists[m.list_id].category, index.lists[m.list_id].allow) for m in index.match(name)
    }


def test_the_configuration_shares_its_category_names_with_the_shipped_lists() -> None:
    # The name model's categories have no list file: the model answers for them.
    assert set(DEFAULT_CATEGORIES) - set(CATEGORIES) == set(MODEL_CATEGORIES)
    assert [c for c in DEFAULT_CATEGORIES if c in CATEGORIES] == list(CATEGORIES)


@pytest.mark.parametrize(
    ("configured", "category", "expected"),
    [
        pytest.param((), "gambling", SHIPPED["gambling"], id="shipped-by-default"),
        pytest.param(
            (("gambling", ("/lists/extra.txt",)),),
            "gambling",
            ("/lists/extra.txt",),
            id="configured-replaces",
        ),
        pytest.param(
            (("gambling", ("shipped", "/lists/extra.txt")),),
            "gambling",
            (*SHIPPED["gambling"], "/lists/extra.txt"),
            id="shipped-keeps",
        ),
        pytest.param(
            (("homework", ("/lists/h.txt", "/lists/h.txt")),),
            "homework",
            ("/lists/h.txt",),
            id="new-category-once",
        ),
    ],
)
def test_sources_of_a_category(
    configured: tuple[tuple[str, tuple[str, ...]], ...], category: str, expected: tuple[str, ...]
) -> None:
    pairs = resolve_sources(configured)
    assert tuple(source for c, source in pairs if c == category) == expected
    assert {c for c, _ in pairs} >= set(CATEGORIES)


def test_local_and_remote_sources_build_one_index(tmp_path: Path, server: ListServer) -> None:
    local = tmp_path / "gambling.txt"
    local.write_bytes(HOSTS)
    server.pages["/roulette.txt"] = Page(ADBLOCK, etag='"v1"')
    sut = ListSet(
        ListsConfig(cache_dir=tmp_path / "cache", download_defaults=False),
        (("gambling", (str(local), server.url("/roulette.txt"))),),
    )
    result = sut.build(download=True)
    sut.index = result.index
    try:
        assert categories_of(sut, "www.casino.example") == {("gambling", False)}
        assert categories_of(sut, "fair.roulette.example") == {
            ("gambling", False),
            ("gambling", True),
        }
        assert categories_of(sut, "example.org") == set()
        assert categories_of(sut, "www.pornhub.com") == {("adult", False)}  # shipped adult
        by_source = {s.source: s for s in result.sources}
        hosts = by_source[str(local)].report
        assert (hosts.entries, hosts.duplicates) == (3, 1)
        adblock = by_source[server.url("/roulette.txt")].report
        assert (adblock.entries, adblock.allow_entries) == (1, 1)
        assert adblock.skipped == {"cosmetic_rule": 1}
        assert result.changed == [server.url("/roulette.txt")]
    finally:
        sut.close()


def test_an_unchanged_set_of_sources_is_mapped_from_disk(tmp_path: Path) -> None:
    local = tmp_path / "gambling.txt"
    local.write_bytes(HOSTS)
    config = ListsConfig(cache_dir=tmp_path / "cache", download_defaults=False)
    first = ListSet(config, (("gambling", (str(local),)),)).build()
    names = len(first.index)
    first.index.close()
    again = ListSet(config, (("gambling", (str(local),)),)).build()
    assert (first.reused, again.reused) == (False, True)
    assert len(again.index) == names
    assert {s.source: s.report.entries for s in again.sources}[str(local)] == 3
    again.index.close()
    local.write_bytes(HOSTS + b"0.0.0.0 slots.example\n")
    os.utime(local, ns=(1, 1))  # a changed file: size and time differ
    changed = ListSet(config, (("gambling", (str(local),)),)).build()
    assert not changed.reused
    assert len(changed.index) == names + 1
    changed.index.close()


GOOD_NAMES = [f"casino{i}.example" for i in range(200)]
GOOD_LIST = ("# a hosts file\n" + "".join(f"0.0.0.0 {n}\n" for n in GOOD_NAMES)).encode()
SHRUNK_95 = b"".join(f"0.0.0.0 {n}\n".encode() for n in GOOD_NAMES[:10])
SHRUNK_85 = b"".join(f"0.0.0.0 {n}\n".encode() for n in GOOD_NAMES[:30])

# id, what replaces the good list (None: the file is deleted), the start of the reason
DAMAGE = [
    pytest.param(b"", "no usable entry", id="emptied"),
    pytest.param(b"<html><body>502 Bad Gateway</body></html>\n", "no usable entry", id="html"),
    pytest.param(bytes(range(256)), "not text: NUL bytes", id="binary"),
    pytest.param(
        bytes(range(256)) * 4 + b"\nwin.example\n0.0.0.0 slots.example\n" + bytes(range(256)),
        "not text: NUL bytes",
        id="binary-with-accidental-names",
    ),
    pytest.param(
        b"\n".join(b"\xc3\x28\xa0\xa1 x%d.example" % i for i in range(50)) + b"\nwin.example\n",
        "not text: 50 of 51 lines are not UTF-8",
        id="mostly-undecodable",
    ),
    pytest.param(
        b"Dear user,\nthe list moved to\nwin.example\nplease update your settings\n",
        "mostly invalid: 3 of 4 lines",
        id="prose-with-a-name",
    ),
    pytest.param(
        SHRUNK_95, "95 % smaller than the last good copy (200 -> 10 entries)", id="shrunk"
    ),
    pytest.param(None, "the file is missing", id="deleted"),
]


def replace_file(path: Path, data: bytes | None) -> None:
    """Replace a list file as an editor or a broken script would, with a new time stamp."""
    if data is None:
        path.unlink()
        return
    path.write_bytes(data)
    os.utime(path, ns=(time.time_ns() + 10**9,) * 2)


@pytest.mark.parametrize(("damage", "reason"), DAMAGE)
def test_a_rejected_local_file_leaves_its_copy_and_its_names_as_they_were(
    tmp_path: Path, damage: bytes | None, reason: str
) -> None:
    local = tmp_path / "gambling.txt"
    local.write_bytes(GOOD_LIST)
    config = ListsConfig(cache_dir=tmp_path / "cache", download_defaults=False)
    first = ListSet(config, (("gambling", (str(local),)),)).build()
    first.index.close()
    copy = copy_path(config.cache_dir, str(local))
    assert copy.read_bytes() == GOOD_LIST
    replace_file(local, damage)
    sut = ListSet(config, (("gambling", (str(local),)),))
    result = sut.build()
    sut.index = result.index
    status = {s.source: s for s in result.sources}[str(local)]
    assert status.rejected is not None and status.rejected.startswith(reason), status.rejected
    assert status.error == f"{local}: rejected: {status.rejected}; the last good copy serves"
    assert status.using_copy
    assert status.report.entries == 200  # what serves: the copy
    assert copy.read_bytes() == GOOD_LIST
    assert all(categories_of(sut, n) == {("gambling", False)} for n in GOOD_NAMES)
    assert categories_of(sut, "win.example") == categories_of(sut, "slots.example") == set()
    sut.close()


def test_a_list_that_shrinks_within_max_shrink_is_taken(tmp_path: Path) -> None:
    local = tmp_path / "gambling.txt"
    local.write_bytes(GOOD_LIST)
    config = ListsConfig(cache_dir=tmp_path / "cache", download_defaults=False)
    ListSet(config, (("gambling", (str(local),)),)).build().index.close()
    replace_file(local, SHRUNK_85)
    sut = ListSet(config, (("gambling", (str(local),)),))
    result = sut.build()
    sut.index = result.index
    status = {s.source: s for s in result.sources}[str(local)]
    assert (status.rejected, status.error, status.report.entries) == (None, None, 30)
    assert copy_path(config.cache_dir, str(local)).read_bytes() == SHRUNK_85
    assert categories_of(sut, GOOD_NAMES[29]) == {("gambling", False)}
    assert categories_of(sut, GOOD_NAMES[30]) == set()
    sut.close()


def test_max_shrink_100_accepts_any_shrink(tmp_path: Path) -> None:
    local = tmp_path / "gambling.txt"
    local.write_bytes(GOOD_LIST)
    config = ListsConfig(cache_dir=tmp_path / "cache", download_defaults=False, max_shrink=100)
    ListSet(config, (("gambling", (str(local),)),)).build().index.close()
    replace_file(local, SHRUNK_95)
    result = ListSet(config, (("gambling", (str(local),)),)).build()
    status = {s.source: s for s in result.sources}[str(local)]
    assert (status.rejected, status.report.entries) == (None, 10)
    result.index.close()


def test_junk_without_a_good_copy_adds_nothing_and_says_so(tmp_path: Path) -> None:
    local = tmp_path / "gambling.txt"
    local.write_bytes(b"\x00\x01binary\nwin.example\n")
    config = ListsConfig(cache_dir=tmp_path / "cache", download_defaults=False)
    sut = ListSet(config, (("gambling", (str(local),)),))
    result = sut.build()
    sut.index = result.index
    status = {s.source: s for s in result.sources}[str(local)]
    assert status.error is not None and status.error.endswith("no good copy, so it adds nothing")
    assert (status.using_copy, status.report.entries) == (False, 0)
    assert categories_of(sut, "win.example") == set()
    assert not copy_path(config.cache_dir, str(local)).exists()
    sut.close()


def test_a_rejection_is_still_shown_when_the_index_is_reused(tmp_path: Path) -> None:
    local = tmp_path / "gambling.txt"
    local.write_bytes(GOOD_LIST)
    config = ListsConfig(cache_dir=tmp_path / "cache", download_defaults=False)
    ListSet(config, (("gambling", (str(local),)),)).build().index.close()
    replace_file(local, b"\x00junk\n")
    ListSet(config, (("gambling", (str(local),)),)).build().index.close()
    again = ListSet(config, (("gambling", (str(local),)),)).build()  # a restart: nothing parsed
    status = {s.source: s for s in again.sources}[str(local)]
    assert again.reused
    assert status.rejected is not None and status.rejected.startswith("not text")
    again.index.close()


def test_a_garbage_download_keeps_the_previous_copy(tmp_path: Path, server: ListServer) -> None:
    server.pages["/g.txt"] = Page(HOSTS)
    config = ListsConfig(cache_dir=tmp_path / "cache", download_defaults=False)
    categories = (("gambling", (server.url("/g.txt"),)),)
    ListSet(config, categories).build(download=True).index.close()
    server.pages["/g.txt"] = Page(b"<html><body>maintenance</body></html>\n")
    sut = ListSet(config, categories)
    result = sut.build(download=True)
    sut.index = result.index
    status = {s.source: s for s in result.sources}[server.url("/g.txt")]
    assert status.error is not None and "no usable entry" in status.error
    assert categories_of(sut, "poker.example") == {("gambling", False)}
    assert result.changed == []
    sut.close()


async def test_load_builds_off_the_event_loop_and_swaps_in_one_step(tmp_path: Path) -> None:
    local = tmp_path / "gambling.txt"
    local.write_bytes(HOSTS)
    sut = ListSet(
        ListsConfig(cache_dir=tmp_path / "cache", download_defaults=False),
        (("gambling", (str(local),)),),
    )
    empty = sut.index
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    beat = asyncio.create_task(ticker())
    await sut.load()
    beat.cancel()
    assert ticks > 1  # the loop kept running while the index was built
    assert sut.index is not empty
    assert categories_of(sut, "casino.example") == {("gambling", False)}
    sut.close()


async def test_the_proxy_loads_the_shipped_index_before_answering() -> None:
    async with (
        FakeUpstream({("example.com", "A"): ["93.184.216.34"]}) as upstream,
        running_proxy(config_for(upstream.address)) as proxy,
    ):
        index = proxy.app.lists.index
        assert len(index) > 100_000
        assert "gambling" in {index.lists[m.list_id].category for m in index.match("bet365.com")}


def test_lists_stats_and_update_report_per_source(
    tmp_path: Path, server: ListServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.pages["/g.txt"] = Page(HOSTS, etag='"1"')
    config = tmp_path / "config.yaml"
    config.write_text(
        f"lists: {{cache_dir: {tmp_path / 'cache'}, download_defaults: false}}\n"
        f"categories: {{gambling: ['{server.url('/g.txt')}']}}\n"
    )
    assert main(["lists", "stats", "-c", str(config), "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert main(["lists", "update", "-c", str(config), "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert main(["lists", "stats", "-c", str(config)]) == 0
    table = capsys.readouterr().out
    g = server.url("/g.txt")
    entries = {s["source"]: s["entries"] for s in after["sources"]}
    assert {s["source"]: s["entries"] for s in before["sources"]}[g] == 0
    assert entries[g] == 3  # casino.example twice: one of them a duplicate
    assert after["changed"] == [g]
    assert after["categories"]["gambling"]["entries"] == 3
    assert after["bytes_per_name"] == 8.0
    assert "gambling" in table and "127.0.0.1" in table and "names in" in table


def test_a_failed_download_is_retried_long_before_the_refresh_period() -> None:
    from filterdns.lists.catalog import SourceStatus
    from filterdns.lists.freshness import RETRY_AFTER_FAILURE, _next_due
    from filterdns.lists.sourcereport import SourceReport

    fresh = SourceStatus("g", "https://a/x", "remote", SourceReport("x"), fetched_at=time.time())
    failed = SourceStatus("g", "https://b/y", "remote", SourceReport("y"), error="HTTP 503")
    assert _next_due([fresh], 86400) > 86000
    assert _next_due([fresh, failed], 86400) == RETRY_AFTER_FAILURE


async def test_a_restart_after_an_edit_serves_the_previous_index_until_the_new_one_is_in(
    tmp_path: Path,
) -> None:
    local = tmp_path / "gambling.txt"
    local.write_bytes(GOOD_LIST)
    config = ListsConfig(cache_dir=tmp_path / "cache", download_defaults=False)
    ListSet(config, (("gambling", (str(local),)),)).build().index.close()
    replace_file(local, GOOD_LIST + b"0.0.0.0 slots.example\n")
    sut = ListSet(config, (("gambling", (str(local),)),))
    await sut.start()
    try:
        assert sut.interim == "the previous index"
        assert categories_of(sut, GOOD_NAMES[0]) == {("gambling", False)}  # protective at once
        await asyncio.wait_for(sut.ready.wait(), timeout=60)
        assert sut.interim is None
        assert categories_of(sut, "slots.example") == {("gambling", False)}
    finally:
        await sut.aclose()


async def test_an_unchanged_restart_is_ready_at_once(tmp_path: Path) -> None:
    local = tmp_path / "gambling.txt"
    local.write_bytes(GOOD_LIST)
    config = ListsConfig(cache_dir=tmp_path / "cache", download_defaults=False)
    ListSet(config, (("gambling", (str(local),)),)).build().index.close()
    sut = ListSet(config, (("gambling", (str(local),)),))
    await sut.start()
    assert sut.ready.is_set() and sut.interim is None and not sut.builder.started.is_set()
    assert {s.source: s.report.entries for s in sut.sources}[str(local)] == 200
    await sut.aclose()


GOOD_DOWNLOAD = b"".join(f"0.0.0.0 {n}\n".encode() for n in GOOD_NAMES)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(
            bytes(range(256)) * 4 + b"\nwin.example\n", "not text: NUL bytes", id="binary"
        ),
        pytest.param(SHRUNK_95, "95 % smaller than the last good copy", id="shrunk"),
        pytest.param(
            b"<!DOCTYPE html>\n<html>\n<p>Moved</p>\n<a href=x>win.example</a>\nwin.example\n",
            "mostly invalid: 4 of 5 lines",
            id="html-with-a-name",
        ),
    ],
)
def test_a_rejected_download_never_overwrites_the_previous_one(
    tmp_path: Path, server: ListServer, body: bytes, reason: str
) -> None:
    server.pages["/g.txt"] = Page(GOOD_DOWNLOAD, etag='"1"')
    config = ListsConfig(cache_dir=tmp_path / "cache", download_defaults=False)
    categories = (("gambling", (server.url("/g.txt"),)),)
    first = ListSet(config, categories)
    first.build(download=True).index.close()
    kept = first.remote.path_for(server.url("/g.txt"))
    assert kept.read_bytes() == GOOD_DOWNLOAD
    server.pages["/g.txt"] = Page(body, etag='"2"')
    sut = ListSet(config, categories)
    result = sut.build(download=True)
    sut.index = result.index
    status = {s.source: s for s in result.sources}[server.url("/g.txt")]
    assert status.rejected is not None and status.rejected.startswith(reason), status.rejected
    assert status.error is not None and status.error.endswith("the last good copy serves")
    assert kept.read_bytes() == GOOD_DOWNLOAD
    assert all(categories_of(sut, n) == {("gambling", False)} for n in GOOD_NAMES)
    assert categories_of(sut, "win.example") == set()
    sut.close()
    later = ListSet(config, categories).build()  # e.g. a local edit: no download
    status = {s.source: s for s in later.sources}[server.url("/g.txt")]
    assert status.rejected is not None and status.rejected.startswith(reason)
    later.index.close()
    server.pages["/g.txt"] = Page(GOOD_DOWNLOAD + b"0.0.0.0 win.example\n", etag='"3"')
    fixed = ListSet(config, categories).build(download=True)
    status = {s.source: s for s in fixed.sources}[server.url("/g.txt")]
    assert (status.rejected, status.error, status.report.entries) == (None, None, 201)
    fixed.index.close()


def test_a_junk_download_kept_by_an_older_version_adds_nothing(
    tmp_path: Path, server: ListServer
) -> None:
    server.pages["/g.txt"] = Page(GOOD_DOWNLOAD)
    config = ListsConfig(cache_dir=tmp_path / "cache", download_defaults=False)
    categories = (("gambling", (server.url("/g.txt"),)),)
    sut = ListSet(config, categories)
    sut.build(download=True).index.close()
    sut.remote.path_for(server.url("/g.txt")).write_bytes(
        b"\x00\x01\x02 win.example\nwin.example\n"
    )
    result = sut.build()
    sut.index = result.index
    status = {s.source: s for s in result.sources}[server.url("/g.txt")]
    assert status.rejected is not None and status.rejected.startswith("the kept download: not text")
    assert categories_of(sut, "win.example") == set()
    sut.close()


async def test_without_a_child_process_the_build_runs_in_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("filterdns.lists.catalog.SMALL_BUILD", 0)  # a child would build it
    monkeypatch.setattr("filterdns.lists.builder.sys.executable", str(tmp_path / "no-python"))
    local = tmp_path / "gambling.txt"
    local.write_bytes(GOOD_LIST)
    sut = ListSet(
        ListsConfig(cache_dir=tmp_path / "cache", download_defaults=False),
        (("gambling", (str(local),)),),
    )
    result = await sut.load()
    assert not result.reused and sut.ready.is_set()
    assert categories_of(sut, GOOD_NAMES[0]) == {("gambling", False)}
    assert "building in this process instead" in caplog.text
    await sut.aclose()


def test_lists_stats_shows_a_rejection_and_a_build_in_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = tmp_path / "gambling.txt"
    local.write_bytes(GOOD_LIST)
    cache = tmp_path / "cache"
    config = tmp_path / "config.yaml"
    config.write_text(
        f"lists: {{cache_dir: {cache}, download_defaults: false}}\n"
        f"categories: {{gambling: ['{local}']}}\n"
    )
    assert main(["lists", "stats", "-c", str(config)]) == 0
    replace_file(local, SHRUNK_95)
    (cache / BUILDING_FILE).write_text(
        json.dumps({"pid": os.getpid(), "since": time.time(), "serving": "the previous index"})
    )  # as a server that is building writes it
    capsys.readouterr()
    assert main(["lists", "stats", "-c", str(config)]) == 0
    table = capsys.readouterr().out
    flat = " ".join(table.replace("│", " ").split())  # the status cell may wrap
    assert (
        "rejected: 95 % smaller than the last good copy (200 -> 10 entries); the last good copy "
        "serves"
    ) in flat
    assert f"building: the running server (pid {os.getpid()})" in table
    assert main(["lists", "stats", "-c", str(config), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (status,) = [s for s in data["sources"] if s["source"] == str(local)]
    assert status["rejected"] == "95 % smaller than the last good copy (200 -> 10 entries)"
    assert (status["entries"], status["using_copy"]) == (200, True)
    assert data["building"]["serving"] == "the previous index"


async def test_the_child_builder_reports_back_and_its_log_lines_reach_the_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    local = tmp_path / "gambling.txt"
    local.write_bytes(GOOD_LIST)
    config = ListsConfig(cache_dir=tmp_path / "cache", download_defaults=False)
    categories = (("gambling", (str(local),)),)
    ListSet(config, categories).build().index.close()
    replace_file(local, b"\x00" * 64)
    result = await ChildBuilder().build(config, categories, download=False)
    (status,) = [s for s in result.sources if s["source"] == str(local)]
    assert str(status["rejected"]).startswith("not text: NUL bytes")
    (record,) = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert (record.name, record.levelname) == ("filterdns.lists.sources", "WARNING")
    assert str(local) in record.getMessage()
    index = DomainIndex.open(config.cache_dir / INDEX_FILE, result.fingerprint)
    assert index is not None and index.match(GOOD_NAMES[0])
    index.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_list_file_keeps_its_copy(tmp_path: Path) -> None:
    local = tmp_path / "gambling.txt"
    local.write_bytes(GOOD_LIST)
    config = ListsConfig(cache_dir=tmp_path / "cache", download_defaults=False)
    ListSet(config, (("gambling", (str(local),)),)).build().index.close()
    replace_file(local, GOOD_LIST + b"0.0.0.0 win.example\n")
    local.chmod(0)
    result = ListSet(config, (("gambling", (str(local),)),)).build()
    status = {s.source: s for s in result.sources}[str(local)]
    assert status.rejected == "it cannot be read: Permission denied"
    assert (status.using_copy, status.report.entries) == (True, 200)
    result.index.close()


def test_a_list_path_that_became_a_directory_keeps_its_copy(tmp_path: Path) -> None:
    local = tmp_path / "gambling.txt"
    local.write_bytes(GOOD_LIST)
    config = ListsConfig(cache_dir=tmp_path / "cache", download_defaults=False)
    ListSet(config, (("gambling", (str(local),)),)).build().index.close()
    local.unlink()
    local.mkdir()
    result = ListSet(config, (("gambling", (str(local),)),)).build()
    status = {s.source: s for s in result.sources}[str(local)]
    assert status.rejected == "it is not a readable file"
    assert (status.using_copy, status.report.entries) == (True, 200)
    result.index.close()
