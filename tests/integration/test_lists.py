"""The category lists as a whole: sources resolved, parsed, indexed, persisted, refreshed."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from filterdns.cli import main
from filterdns.config import DEFAULT_CATEGORIES, ListsConfig
from filterdns.lists.catalog import ListSet, resolve_sources
from filterdns.lists.shipped import CATEGORIES, SHIPPED
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
    assert DEFAULT_CATEGORIES == CATEGORIES


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
    assert {c for c, _ in pairs} >= set(DEFAULT_CATEGORIES)


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


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(b"", id="emptied"),
        pytest.param(b"<html><body>502 Bad Gateway</body></html>\n", id="html"),
        pytest.param(bytes(range(256)), id="binary"),
        pytest.param(None, id="deleted"),
    ],
)
def test_a_local_source_that_yields_nothing_keeps_its_last_good_copy(
    tmp_path: Path, damage: bytes | None
) -> None:
    local = tmp_path / "gambling.txt"
    local.write_bytes(HOSTS)
    config = ListsConfig(cache_dir=tmp_path / "cache", download_defaults=False)
    ListSet(config, (("gambling", (str(local),)),)).build().index.close()
    if damage is None:
        local.unlink()
    else:
        local.write_bytes(damage)
    sut = ListSet(config, (("gambling", (str(local),)),))
    result = sut.build()
    sut.index = result.index
    status = {s.source: s for s in result.sources}[str(local)]
    assert status.using_copy
    assert status.error is not None and str(local) in status.error
    assert categories_of(sut, "casino.example") == {("gambling", False)}
    sut.close()


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
    from filterdns.lists.catalog import RETRY_AFTER_FAILURE, SourceStatus, _next_due
    from filterdns.lists.parse import SourceReport

    fresh = SourceStatus("g", "https://a/x", "remote", SourceReport("x"), fetched_at=time.time())
    failed = SourceStatus("g", "https://b/y", "remote", SourceReport("y"), error="HTTP 503")
    assert _next_due([fresh], 86400) > 86000
    assert _next_due([fresh, failed], 86400) == RETRY_AFTER_FAILURE
