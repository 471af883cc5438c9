"""Regex rules end to end: through the child builder and the index file, and through the real
proxy answering over UDP and TCP."""

from __future__ import annotations

from pathlib import Path

import dns.rcode
import pytest

from filterdns.cli.main import main
from filterdns.config import ListsConfig
from filterdns.lists.builder import ChildBuilder
from filterdns.lists.cachedir import INDEX_FILE
from filterdns.lists.catalog import ListSet
from filterdns.lists.index import DomainIndex
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import config_for, running_proxy

RULES = b"""! gambling rules
casino.example
/^(.+[.])?casino[0-9]+[.]/
@@/^fair[.]/$important
/(a+)+x/
"""
RECORDS = {
    (name, "A"): ["203.0.113.7"]
    for name in (
        "example.com",
        "casino7.example",
        "www.casino7.example",
        "fair.casino7.example",
        "tiktok3.example",
        "kidsgames.casino.example",
    )
}


async def test_the_child_builder_keeps_the_regex_rules_in_the_index_file(tmp_path: Path) -> None:
    local = tmp_path / "gambling.txt"
    local.write_bytes(RULES)
    config = ListsConfig(cache_dir=tmp_path / "cache", download_defaults=False)
    categories = (("gambling", (str(local),)),)
    result = await ChildBuilder().build(config, categories, download=False)
    (status,) = [s for s in result.sources if s["source"] == str(local)]
    assert status["regex_entries"] == 2
    assert status["skipped"] == {"bad_regex": 1}
    assert status["examples"] == {"bad_regex": [f"{local}:5: /(a+)+x/"]}
    index = DomainIndex.open(config.cache_dir / INDEX_FILE, result.fingerprint)
    assert index is not None
    hits = [
        (index.lists[r.list_id].allow, r.line) for r in index.match_regex("fair.casino7.example")
    ]
    assert hits == [(False, 3), (True, 4)]
    index.close()
    again = ListSet(config, categories).build()  # nothing changed: the file is mapped again
    assert again.reused
    assert [r.pattern for r in again.index.regexes] == ["^(.+[.])?casino[0-9]+[.]", "^fair[.]"]
    again.index.close()


@pytest.fixture
async def upstream() -> FakeUpstream:
    async with FakeUpstream(RECORDS) as fake:
        yield fake


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_the_proxy_blocks_by_list_and_profile_regexes(
    upstream: FakeUpstream, tmp_path: Path, tcp: bool
) -> None:
    gambling = tmp_path / "gambling.txt"
    gambling.write_bytes(RULES)
    extra = f"""\
        log: {{database: {tmp_path / "filterdns.db"}}}
        categories: {{gambling: ["{gambling}"]}}
        profiles:
          minh:
            age_band: 9-12
            band_schedules: false
            allow: ["/^kids[a-z]*[.]/"]
            block: ["/^tiktok[0-9]*[.]/"]
        default_profile: minh
    """
    expected = {
        "example.com": dns.rcode.NOERROR,
        "casino7.example": dns.rcode.NXDOMAIN,  # the list's regex, gambling blocked for 9-12
        "www.casino7.example": dns.rcode.NXDOMAIN,
        "fair.casino7.example": dns.rcode.NOERROR,  # its @@ regex exception
        "tiktok3.example": dns.rcode.NXDOMAIN,  # the profile's block regex
        "kidsgames.casino.example": dns.rcode.NOERROR,  # the profile's allow regex
    }
    async with running_proxy(config_for(upstream.address, extra=extra)) as proxy:
        found = {name: (await proxy.query(name, tcp=tcp)).rcode() for name in expected}
    assert found == expected


def test_lists_stats_counts_the_regex_rules_and_the_refused_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = tmp_path / "gambling.txt"
    local.write_bytes(RULES)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"lists: {{cache_dir: {tmp_path / 'cache'}, download_defaults: false}}\n"
        f"categories: {{gambling: ['{local}']}}\n"
    )
    assert main(["lists", "stats", "-c", str(config)]) == 0
    table = capsys.readouterr().out
    # The gambling source's row (a long temporary path is cut short with an ellipsis)
    row = next(line for line in table.splitlines() if line.startswith("│ gambling "))
    assert "(+1 allow) (2 regex)" in row
    assert "bad_regex 1" in row
