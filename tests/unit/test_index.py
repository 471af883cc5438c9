"""The compact domain index: suffix matching, several lists, repeats, the persisted file."""

from __future__ import annotations

import gc
import struct
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filterdns.lists import indexbuild
from filterdns.lists.index import DomainIndex, Match
from filterdns.lists.indexbuild import IndexBuilder
from filterdns.lists.indexfile import (
    MAGIC,
    MAX_LISTS,
    VERSION,
    ListInfo,
    false_positive_rate,
    name_hash,
)

ADS = ListInfo("ads", "ut1/publicite")
MALWARE = ListInfo("malware", "ut1/malware")
SCHOOL = ListInfo("school", "allow.txt", allow=True)


def _build(
    lists: Mapping[ListInfo, Iterable[str]], path: Path | None = None, fingerprint: str = ""
) -> tuple[DomainIndex, IndexBuilder]:
    builder = IndexBuilder()
    for info, names in lists.items():
        builder.add_many(builder.add_list(info), names)
    return builder.finish(path, fingerprint), builder


@pytest.fixture(params=["memory", "file"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Path | None:
    """Each test using it runs on an in-memory index and on a mapped file."""
    return tmp_path / "lists.idx" if request.param == "file" else None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("example.com", [("example.com", 0)], id="listed-name-itself"),
        pytest.param("www.example.com", [("example.com", 0)], id="subdomain"),
        pytest.param("a.b.c.example.com", [("example.com", 0)], id="deep-subdomain"),
        pytest.param("notexample.com", [], id="sibling-sharing-the-tail"),
        pytest.param("example.com.evil.net", [], id="listed-name-as-prefix"),
        pytest.param("com", [], id="parent-tld"),
        pytest.param("example.org", [], id="other-tld"),
        pytest.param("example.net", [], id="parent-of-listed-name"),
        pytest.param("tracker.example.net", [("tracker.example.net", 1)], id="second-list"),
        pytest.param("x.tracker.example.net", [("tracker.example.net", 1)], id="second-list-sub"),
        pytest.param("", [], id="empty-name"),
        pytest.param("localhost", [], id="single-label"),
    ],
)
def test_match_finds_listed_names_and_their_subdomains(
    where: Path | None, query: str, expected: list[tuple[str, int]]
) -> None:
    sut, _ = _build({ADS: ["example.com"], MALWARE: ["tracker.example.net"]}, where)
    assert sut.match(query) == [Match(name, list_id) for name, list_id in expected]
    assert sut.lists_for(query) == {list_id for _, list_id in expected}


def test_every_list_holding_a_suffix_is_reported_most_specific_first(where: Path | None) -> None:
    sut, _ = _build(
        {ADS: ["ads.example.com"], MALWARE: ["example.com"], SCHOOL: ["ads.example.com"]}, where
    )
    assert sut.match("x.ads.example.com") == [
        Match("ads.example.com", 0),
        Match("ads.example.com", 2),
        Match("example.com", 1),
    ]


def test_allow_lists_keep_their_flag(where: Path | None) -> None:
    sut, _ = _build({ADS: ["games.example"], SCHOOL: ["edu.games.example"]}, where)
    hits = [(m.name, sut.lists[m.list_id]) for m in sut.match("www.edu.games.example")]
    assert hits == [("edu.games.example", SCHOOL), ("games.example", ADS)]
    assert [info.allow for _, info in hits] == [True, False]


def test_repeats_within_a_list_are_counted_per_list_and_dropped(where: Path | None) -> None:
    sut, builder = _build(
        {
            ADS: ["a.example", "a.example", "b.example", "a.example"],
            MALWARE: ["b.example", "a.example", "b.example"],
            SCHOOL: ["c.example"],
        },
        where,
    )
    assert builder.duplicates == {0: 2, 1: 1, 2: 0}
    assert len(sut) == 5
    assert sut.nbytes == 40
    assert sut.match("a.example") == [Match("a.example", 0), Match("a.example", 1)]


def test_add_many_returns_how_many_names_it_read() -> None:
    builder = IndexBuilder()
    list_id = builder.add_list(ADS)
    assert builder.add_many(list_id, iter(["a.example", "b.example", "a.example"])) == 3
    builder.add(list_id, "c.example")
    assert len(builder.finish()) == 3


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda _: DomainIndex.empty(), id="empty"),
        pytest.param(lambda where: _build({}, where)[0], id="no-lists"),
        pytest.param(lambda where: _build({ADS: []}, where)[0], id="lists-without-names"),
    ],
)
def test_an_empty_index_matches_nothing(
    where: Path | None, make: Callable[[Path | None], DomainIndex]
) -> None:
    sut = make(where)
    assert (len(sut), sut.nbytes, sut.match("www.example.com")) == (0, 0, [])


def test_an_index_of_thousands_of_names_finds_each_and_only_those(where: Path | None) -> None:
    listed = [f"host{i}.example{i % 7}.com" for i in range(5000)]
    sut, _ = _build({ADS: listed[::2], MALWARE: listed[1::2]}, where)
    assert all(sut.match(name) == [Match(name, i % 2)] for i, name in enumerate(listed))
    assert all(sut.match(f"www.{name}") == [Match(name, i % 2)] for i, name in enumerate(listed))
    assert not any(sut.match(f"other{i}.example{i % 7}.com") for i in range(5000))


@pytest.mark.parametrize("finish_to_file", [False, True], ids=["memory", "file"])
def test_a_spilled_build_equals_an_in_memory_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, finish_to_file: bool
) -> None:
    monkeypatch.setattr("filterdns.lists.indexbuild.BATCH", 16)
    monkeypatch.setattr("filterdns.lists.indexbuild.SPILL_WORDS", 64)
    lists = {
        ADS: [f"host{i % 700}.example.com" for i in range(1000)],
        MALWARE: [f"host{i}.example.com" for i in range(0, 900, 3)],
    }
    expected, plain = _build(lists)
    builder = IndexBuilder(spill_dir=tmp_path)
    builder.add_many(builder.add_list(ADS), lists[ADS])
    malware = builder.add_list(MALWARE)
    for name in lists[MALWARE]:
        builder.add(malware, name)  # one at a time: add spills too
    sut = builder.finish(tmp_path / "lists.idx" if finish_to_file else None)
    assert builder.duplicates == plain.duplicates == {0: 300, 1: 0}
    assert len(sut) == len(expected) == 1000
    for i in range(1000):
        assert sut.match(f"www.host{i}.example.com") == expected.match(f"www.host{i}.example.com")
    assert [p.name for p in tmp_path.iterdir()] == (["lists.idx"] if finish_to_file else [])
    sut.close()


@pytest.mark.parametrize("spill", [False, True], ids=["in-memory", "spilled"])
def test_a_discarded_list_holds_nothing_and_keeps_its_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: Path | None, spill: bool
) -> None:
    monkeypatch.setattr("filterdns.lists.indexbuild.BATCH", 16)
    monkeypatch.setattr("filterdns.lists.indexbuild.SPILL_WORDS", 64)
    builder = IndexBuilder(spill_dir=tmp_path / "spill" if spill else None)
    (tmp_path / "spill").mkdir()
    ads = builder.add_list(ADS)
    rejected = builder.add_list(MALWARE)
    builder.add_many(ads, [f"host{i}.example.com" for i in range(300)])
    builder.add_many(rejected, [f"host{i}.example.com" for i in range(200, 500)])
    builder.discard(rejected)
    builder.add(rejected, "late.example.com")  # after the discard: left out too
    again = builder.add_list(MALWARE)  # e.g. the last good copy, in its place
    builder.add_many(again, ["copy.example.com", "copy.example.com"])
    sut = builder.finish(where)
    assert len(sut) == 301
    assert sut.lists == (ADS, MALWARE, MALWARE)
    assert sut.match("www.host250.example.com") == [Match("host250.example.com", ads)]
    assert sut.match("host400.example.com") == sut.match("late.example.com") == []
    assert sut.match("copy.example.com") == [Match("copy.example.com", again)]
    assert builder.duplicates == {0: 0, 1: 0, 2: 1}
    sut.close()


def test_an_unfinished_spilling_builder_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("filterdns.lists.indexbuild.SPILL_WORDS", 1)
    builder = IndexBuilder(spill_dir=tmp_path)
    builder.add_many(builder.add_list(ADS), ["a.example", "b.example"])
    del builder
    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_a_non_ascii_name_is_reported_as_text(where: Path | None) -> None:
    sut, _ = _build({ADS: ["bücher.example"]}, where)
    assert sut.match("www.bücher.example") == [Match("bücher.example", 0)]


def test_persisted_index_reopens_with_the_same_answers(tmp_path: Path) -> None:
    path = tmp_path / "lists.idx"
    built, _ = _build(
        {ADS: ["example.com", "ads.example.net"], SCHOOL: ["school.example"]}, path, "fp-1"
    )
    sut = DomainIndex.open(path, "fp-1")
    assert sut is not None
    assert (sut.lists, sut.fingerprint, len(sut)) == ((ADS, SCHOOL), "fp-1", 3)
    for query in ("www.example.com", "x.ads.example.net", "school.example", "example.net"):
        assert sut.match(query) == built.match(query)
    unchecked = DomainIndex.open(path)
    assert unchecked is not None
    assert unchecked.match("www.example.com") == [Match("example.com", 0)]
    for index in (built, sut, unchecked):
        index.close()


def _set_version(data: bytes) -> bytes:
    """A file of the version before (without regex rules in its meta)."""
    return data[:8] + struct.pack("<I", VERSION - 1) + data[12:]


def _flip(at: int) -> Callable[[bytes], bytes]:
    """Flip one bit of the byte at `at` (a file of two entries ends with them and 8 bytes)."""

    def damage(data: bytes) -> bytes:
        i = at % len(data)
        return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]

    return damage


@pytest.mark.parametrize(
    ("damage", "fingerprint"),
    [
        pytest.param(lambda data: data, "fp-other", id="fingerprint-differs"),
        pytest.param(lambda data: data[:-3], None, id="truncated-entries"),
        pytest.param(lambda data: data[:20], None, id="truncated-header"),
        pytest.param(lambda data: b"", None, id="empty-file"),
        pytest.param(lambda data: data + b"\0" * 8, None, id="trailing-bytes"),
        pytest.param(lambda data: b"NOTANIDX" + data[8:], None, id="wrong-magic"),
        pytest.param(_set_version, None, id="other-version"),
        pytest.param(_flip(-20), None, id="entry-bit-flipped"),
        pytest.param(_flip(-1), None, id="directory-bit-flipped"),
        pytest.param(lambda data: data.replace(b'"lists"', b'"lis+s"'), None, id="bad-meta"),
    ],
)
def test_open_refuses_a_damaged_or_stale_file(
    tmp_path: Path, damage: Callable[[bytes], bytes], fingerprint: str | None
) -> None:
    path = tmp_path / "lists.idx"
    _build({ADS: ["example.com", "example.net"]}, path, "fp-1")[0].close()
    path.write_bytes(damage(path.read_bytes()))
    assert DomainIndex.open(path, fingerprint) is None


def test_open_of_a_missing_file_is_none(tmp_path: Path) -> None:
    assert DomainIndex.open(tmp_path / "absent.idx") is None


def test_the_file_layout_is_header_meta_entries_directory(tmp_path: Path) -> None:
    path = tmp_path / "lists.idx"
    _build({ADS: ["example.com"], SCHOOL: ["school.example"]}, path, "fp")[0].close()
    data = path.read_bytes()
    magic, version, meta_len, count, _, bits = struct.unpack_from("<8sIIQII", data)
    assert (magic, version, count, bits) == (MAGIC, 2, 2, 0)
    assert data[32 : 32 + meta_len].startswith(b'{"fingerprint":"fp","lists":[')
    assert data[32 : 32 + meta_len].rstrip().endswith(b'],"regexes":[]}')
    offset = len(data) - 8 * count - 4 * ((1 << bits) + 1)
    assert offset % 8 == 0
    assert offset >= 32 + meta_len
    words = struct.unpack_from("<2Q", data, offset)
    assert list(words) == sorted(words)
    assert sorted(w >> 16 for w in words) == sorted(
        name_hash(n) for n in ("example.com", "school.example")
    )
    assert struct.unpack_from("<2I", data, offset + 16) == (0, 2)


def test_writing_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "lists.idx"
    first, _ = _build({ADS: ["example.com"]}, path)
    second, _ = _build({ADS: ["example.org"]}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["lists.idx"]
    assert first.match("example.com") == [Match("example.com", 0)]  # the old mapping lives on
    assert second.match("example.com") == []
    first.close()
    second.close()


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "lists.idx"
    _build({ADS: ["example.com"]}, path, "old")[0].close()

    def refuse(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("filterdns.lists.indexbuild.os.replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        _build({ADS: ["example.org"]}, path, "new")
    assert [p.name for p in tmp_path.iterdir()] == ["lists.idx"]
    old = DomainIndex.open(path, "old")
    assert old is not None
    old.close()


def test_close_releases_the_mapping_and_later_lookups_miss(tmp_path: Path) -> None:
    sut, _ = _build({ADS: ["example.com"]}, tmp_path / "lists.idx")
    replacement, _ = _build({ADS: ["example.com"]})
    sut.close()
    sut.close()
    assert (len(sut), sut.match("example.com")) == (0, [])
    assert replacement.match("example.com") == [Match("example.com", 0)]


def test_the_list_id_must_fit_sixteen_bits() -> None:
    builder = IndexBuilder()
    ids = [builder.add_list(ADS) for _ in range(MAX_LISTS)]
    assert ids[-1] == 65535
    with pytest.raises(ValueError, match="too many lists"):
        builder.add_list(ADS)


@pytest.mark.parametrize(
    ("list_id", "name", "message"),
    [
        pytest.param(1, "example.com", "unknown list id", id="unknown-list"),
        pytest.param(-1, "example.com", "unknown list id", id="negative-list"),
        pytest.param(0, "com", "two labels", id="single-label-name"),
    ],
)
def test_add_refuses_bad_input(list_id: int, name: str, message: str) -> None:
    builder = IndexBuilder()
    builder.add_list(ADS)
    with pytest.raises(ValueError, match=message):
        builder.add(list_id, name)


def test_a_finished_builder_cannot_be_reused() -> None:
    builder = IndexBuilder()
    builder.add_list(ADS)
    builder.finish()
    with pytest.raises(RuntimeError, match="already finished"):
        builder.add(0, "example.com")


def test_the_hash_is_stable_across_processes() -> None:
    assert name_hash("example.com") == 0xC4B2F5376429
    assert 3.5e-9 < false_positive_rate(1_000_000) < 3.6e-9


LABELS = st.sampled_from(["a", "b", "ex", "example", "com", "org", "xn--bcher-kva"])
NAMES = st.lists(LABELS, min_size=1, max_size=4).map(".".join)


def _model_match(listed: dict[str, set[int]], query: str) -> list[Match]:
    """Every listed suffix of the query that has a dot, most specific first, lists in id order."""
    labels = query.split(".")
    suffixes = [".".join(labels[i:]) for i in range(len(labels) - 1)]
    return [Match(s, list_id) for s in suffixes for list_id in sorted(listed.get(s, ()))]


@settings(max_examples=150, deadline=None)
@given(
    entries=st.lists(st.tuples(st.integers(0, 2), NAMES.filter(lambda n: "." in n)), max_size=40),
    queries=st.lists(NAMES, min_size=1, max_size=20),
)
def test_match_equals_a_set_model(entries: list[tuple[int, str]], queries: list[str]) -> None:
    builder = IndexBuilder()
    for info in (ADS, MALWARE, SCHOOL):
        builder.add_list(info)
    listed: dict[str, set[int]] = {}
    for list_id, name in entries:
        builder.add(list_id, name)
        listed.setdefault(name, set()).add(list_id)
    sut = builder.finish()
    assert len(sut) == sum(len(ids) for ids in listed.values())
    for query in queries + [name for _, name in entries]:
        assert sut.match(query) == _model_match(listed, query)


# Run in a fresh interpreter: how much more private memory (KiB) the process holds after
# building the shipped lists' index (543,000 names) than before, and the names indexed.
GROWTH_PROBE = """
import gc, re, tempfile
from pathlib import Path
from filterdns.lists.cachedir import shipped_index

def anon():
    return int(re.search(r"RssAnon:\\s+(\\d+)", Path("/proc/self/status").read_text())[1])

gc.disable()  # no collection at a different moment in each run
before = anon()
index = shipped_index(Path(tempfile.mkdtemp()))
print(anon() - before, len(index))
"""


@pytest.mark.skipif(
    not Path("/proc/self/status").exists() or indexbuild._malloc_trim() is None,
    reason="needs Linux's /proc and glibc's malloc_trim",
)
def test_a_build_in_the_server_process_hands_back_what_it_freed(tmp_path: Path) -> None:
    """A first start builds the shipped lists in the server's own process: what the build freed
    goes back to the system instead of staying with the server for its whole life.

    Measured (12 runs, three at a time): 1.6-2.0 MB held after the build; 3.0-6.8 MB (mostly
    about 5) when the allocator kept what was freed. One run in three or four may hold a MB
    more (2.2-3.3 MB seen on a machine running the suite), so the least of three counts."""
    runs = [
        subprocess.run(
            [sys.executable, "-c", GROWTH_PROBE], capture_output=True, text=True, check=True,
            cwd=tmp_path,
        ).stdout.split()
        for _ in range(3)
    ]  # fmt: skip
    kib = min(int(run[0]) for run in runs)
    names = int(runs[0][1])
    assert names > 500_000  # the shipped lists, whole
    assert kib < 2.5 * 1024
