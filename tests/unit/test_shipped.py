"""The shipped category lists: the manifest, the files, their attribution, and that they match
what scripts/build_blocklists.py generates from the pinned public lists."""

from __future__ import annotations

import functools
import gzip
import importlib.util
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import pytest

import filterdns
from filterdns.config import DEFAULT_CATEGORIES, MODEL_CATEGORIES
from filterdns.lists.parse import iter_file, parse_bytes
from filterdns.lists.shipped import (
    CATEGORIES,
    SHIPPED,
    SHIPPED_DIR,
    SHIPPED_PREFIX,
    shipped_path,
)
from filterdns.lists.sourcereport import SourceReport

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "blocklists"
SCRIPT = REPO / "scripts" / "build_blocklists.py"
SOURCES_MD = SHIPPED_DIR / "SOURCES.md"

needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"the pinned public lists are not at {DATA}"
)

SHIPPED_SOURCES = sorted(
    {s for sources in SHIPPED.values() for s in sources if s.startswith(SHIPPED_PREFIX)}
)
REMOTE_SOURCES = sorted({s for sources in SHIPPED.values() for s in sources if "://" in s})
# Two or more labels of [a-z0-9_-]{1,63}, the last one not all digits (not an IPv4 address).
VALID_NAME = re.compile(r"(?:[a-z0-9_-]{1,63}\.)+(?![0-9]+\Z)[a-z0-9_-]{1,63}").fullmatch


def source_of(category: str) -> str:
    """The shipped source of a category, as the manifest names it (.txt or .txt.gz)."""
    return SHIPPED[category][0]


def read_bytes(source: str) -> bytes:
    """A shipped file's content (decompressed when it is stored as .gz)."""
    raw = shipped_path(source).read_bytes()
    return gzip.decompress(raw) if source.endswith(".gz") else raw


def read_list(source: str) -> tuple[list[str], list[str]]:
    """(header lines, name lines) of a shipped file; its `@@` exception lines are left out."""
    lines = read_bytes(source).decode("utf-8").splitlines()
    header = [line for line in lines if line.startswith("#")]
    names = [line for line in lines if not line.startswith(("#", "@@"))]
    return header, names


def listed(names: set[str], qname: str) -> bool:
    """Whether a list blocks `qname`: the name or one of its parent domains is listed."""
    labels = qname.split(".")
    return any(".".join(labels[i:]) in names for i in range(len(labels)))


@functools.cache
def load_script() -> ModuleType:
    """scripts/build_blocklists.py as a module (registered, as its dataclasses need)."""
    name = "build_blocklists"
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# The manifest


def test_categories_are_the_configs_default_categories() -> None:
    # Every default category has lists but those the name model answers with.
    assert tuple(c for c in DEFAULT_CATEGORIES if c not in MODEL_CATEGORIES) == CATEGORIES
    assert len(CATEGORIES) == len(set(CATEGORIES)) == 16
    assert "ads" in CATEGORIES


def test_every_category_has_sources_and_one_shipped_file() -> None:
    assert list(SHIPPED) == list(CATEGORIES)
    for category, sources in SHIPPED.items():
        assert sources, category
        assert len(sources) == len(set(sources)), category
        # Works offline: the category's own file ships with the package.
        assert sources[0] in (
            f"{SHIPPED_PREFIX}{category}.txt",
            f"{SHIPPED_PREFIX}{category}.txt.gz",
        )


def test_remote_sources_are_https_urls() -> None:
    assert REMOTE_SOURCES
    for source in (s for sources in SHIPPED.values() for s in sources):
        if source.startswith(SHIPPED_PREFIX):
            continue
        parts = urlsplit(source)
        assert parts.scheme == "https", source
        assert parts.netloc == "raw.githubusercontent.com", source
        assert parts.path.count("/") >= 4, source  # /owner/repo/branch/path


def test_shipped_path() -> None:
    assert shipped_path("shipped:gambling.txt") == SHIPPED_DIR / "gambling.txt"
    for bad in (
        "gambling.txt",
        "https://x.org/a.txt",
        "shipped:",
        "shipped:../x.txt",
        "shipped:a/b.txt",
        "shipped:.hidden",
    ):
        with pytest.raises(ValueError):
            shipped_path(bad)


def test_shipped_dir_is_installed_with_the_package() -> None:
    package = Path(filterdns.__file__).resolve().parent
    # The lists live at the top of the repository; the package reaches them as its blocklists/
    # (a link in the checkout, copied into wheels by the package data).
    assert package / "blocklists" == SHIPPED_DIR
    assert SHIPPED_DIR.resolve() == package.parent / "blocklists"
    # Only the generated files live there: the category lists, SOURCES.md and EVAL.md (the
    # lists' measured figures, written by `make lists-eval`).
    present = {p.name for p in SHIPPED_DIR.iterdir() if not p.name.startswith(".")}
    hand_written = {"SOURCES.md", "EVAL.md", "exceptions.txt", "never-block.txt"}
    hand_written |= {"name-model.bin", "name-model.md"}  # scripts/train_name_model.py
    assert present == {shipped_path(s).name for s in SHIPPED_SOURCES} | hand_written


# The files


@pytest.mark.parametrize("source", SHIPPED_SOURCES)
def test_shipped_file_is_a_clean_sorted_list_with_its_header(source: str) -> None:
    path = shipped_path(source)
    assert path.is_file(), path
    raw = read_bytes(source)
    assert raw.endswith(b"\n") and b"\r" not in raw
    header, names = read_list(source)
    category = path.name.split(".")[0]
    assert header[0] == f"# filterdns blocklist: {category}"
    fields = dict(line[2:].split(": ", 1) for line in header if ": " in line[2:])
    assert fields["Names"] == str(len(names))
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", fields["Date"])
    assert fields["Licence"].startswith("CC BY-SA 4.0")
    assert "Sources" in fields
    # Header first, then names, then the category's reviewed exceptions as allow entries.
    lines = raw.decode().splitlines()
    assert all(line.startswith("#") for line in lines[: len(header)])
    allows = lines[len(header) + len(names) :]
    assert fields["Exceptions"].split()[0] == str(len(allows))
    assert all(re.fullmatch(r"@@\|\|[a-z0-9.-]+\^", line) for line in allows), allows[:3]
    assert names, "every category ships at least one name"
    assert names == sorted(names)
    assert len(names) == len(set(names))
    bad = [n for n in names if n != n.lower() or not VALID_NAME(n) or len(n) > 253]
    assert not bad, bad[:5]
    # No name is covered by a listed parent (it would be blocked anyway).
    listed_names = set(names)
    covered = [n for n in names if listed(listed_names, n.split(".", 1)[1])]
    assert not covered, covered[:5]


@pytest.mark.parametrize("source", SHIPPED_SOURCES)
def test_the_servers_parser_reads_every_name_of_a_shipped_file(source: str) -> None:
    _, names = read_list(source)
    raw = read_bytes(source)
    entries, report = parse_bytes(raw, source)
    assert [name for name, allow in entries if not allow] == names
    allows = [line[4:-1] for line in raw.decode().splitlines() if line.startswith("@@")]
    assert [name for name, allow in entries if allow] == allows
    assert not report.skipped, report.examples


@pytest.mark.parametrize("source", [s for s in SHIPPED_SOURCES if s.endswith(".gz")])
def test_the_servers_reader_decompresses_a_packed_shipped_file(source: str) -> None:
    report = SourceReport(source)
    read = [name for name, allow in iter_file(shipped_path(source), report) if not allow]
    assert read == read_list(source)[1]


def test_shipped_files_stay_small() -> None:
    total = sum(shipped_path(s).stat().st_size for s in SHIPPED_SOURCES)
    assert total < 6_000_000  # bytes on disk; the big lists are gzip-compressed


@pytest.mark.parametrize(
    ("category", "names"),
    [
        ("adult", ["pornhub.com", "xvideos.com", "www.xhamster.com"]),  # Sinfonietta
        ("adult", ["vlxx.as", "sexviet.cfd"]),  # ShadowWhisperer: Vietnamese porn
        ("gambling", ["bwin.fr", "pokerstars.com", "10bet.com"]),  # UT1 arjel, UT1, Sinfonietta
        ("dating", ["tinder.com", "grindr.com", "meetic.fr"]),
        ("drugs", ["erowid.org"]),
        ("violence", ["bestgore.com", "americannaziparty.com"]),  # Sinfonietta snuff, UT1
        ("social", ["facebook.com", "www.tiktok.com", "instagram.com"]),
        ("chat", ["discord.com", "omegle.com"]),
        ("games", ["roblox.com", "miniclip.com"]),
        ("video", ["youtube.com", "m.youtube.com", "netflix.com"]),
        ("bypass", ["nordvpn.com", "dns.google", "cloudflare-dns.com", "hola.org", "psiphon.ca"]),
        ("bypass", ["engage.cloudflareclient.com", "www.torproject.org", "ultrasurf.us"]),
        ("bypass", ["browsec.com", "account.protonvpn.com", "vpn-api.proton.me"]),
        ("ads", ["doubleclick.net", "googlesyndication.com", "adnxs.com"]),
        ("malware", ["coin-hive.com", "magento-analytics.com"]),
        ("phishing", ["steancommunitv.com", "particulierbnpparibas.fr", "0000a.net"]),
        ("piracy", ["thepiratebay.org", "1337x.to"]),
        ("cryptojacking", ["coinhive.com", "coin-hive.com"]),
        ("stalkerware", ["mspy.com", "flexispy.com"]),
    ],
)
def test_known_names_are_in_their_category(category: str, names: Sequence[str]) -> None:
    _, listed_names = read_list(source_of(category))
    as_set = set(listed_names)
    for name in names:
        assert listed(as_set, name), (category, name)


@pytest.mark.parametrize(
    ("category", "name"),
    [
        ("chat", "msedge.net"),
        ("chat", "ntp.msn.com"),
        ("games", "apps.apple.com"),
        ("games", "play.google.com"),
        ("bypass", "proxy.safebrowsing.apple"),
        ("bypass", "gateway.icloud.com"),
        ("social", "example.com"),
        ("malware", "doubleclick.net"),  # ads and trackers are never malware
        ("malware", "google-analytics.com"),
        ("bypass", "proton.me"),  # Proton Mail stays; only Proton VPN is bypass
        ("bypass", "cloudflare.com"),  # only the WARP names of Cloudflare
        ("bypass", "opera.com"),  # a browser vendor's main site
    ],
)
def test_excluded_and_unrelated_names_are_not_listed(category: str, name: str) -> None:
    _, listed_names = read_list(source_of(category))
    assert not listed(set(listed_names), name)


# SOURCES.md


def test_sources_md_names_every_file_url_and_the_attribution() -> None:
    text = SOURCES_MD.read_text(encoding="utf-8")
    for source in SHIPPED_SOURCES:
        assert f"`{shipped_path(source).name}`" in text, source
    for url in REMOTE_SOURCES:
        assert url in text, url
    for needed in (
        "CC BY-SA 4.0",
        "https://creativecommons.org/licenses/by-sa/4.0/",
        "Fabrice Prigent",
        "Université Toulouse Capitole",
        "olbat/ut1-blacklists",
        "804da92a9177149204d9a3d0c4ab5bd1cafe120d",
        "Copyright (c) 2016 Sinfonietta",
        "Copyright © Steven Black",
        "GPL-3.0",
        "python scripts/build_blocklists.py",
    ):
        assert needed in text, needed


# The generator


@needs_data
def test_shipped_files_are_what_the_build_script_generates() -> None:
    main: Callable[[Sequence[str]], int] = load_script().main
    assert main(["--check", "--data", str(DATA)]) == 0


@needs_data
def test_build_script_rewrites_a_stale_copy_byte_for_byte(tmp_path: Path) -> None:
    main: Callable[[Sequence[str]], int] = load_script().main
    out = tmp_path / "blocklists"
    shutil.copytree(SHIPPED_DIR, out)
    (out / "games.txt").write_text("# edited by hand\nexample.com\n", encoding="utf-8")
    (out / "adult.txt.gz").write_bytes(gzip.compress(b"example.com\n"))
    (out / "leftover.txt").write_text("example.org\n", encoding="utf-8")
    args = ["--data", str(DATA), "--out", str(out)]
    assert main(["--check", *args]) == 1
    assert main(args) == 0
    assert not (out / "leftover.txt").exists()
    for path in SHIPPED_DIR.iterdir():
        assert (out / path.name).read_bytes() == path.read_bytes(), path.name
    assert (out / "never-block.txt").is_file()  # hand-written files are kept


def test_build_script_without_data_fails_cleanly(tmp_path: Path) -> None:
    main: Callable[[Sequence[str]], int] = load_script().main
    assert main(["--check", "--data", str(tmp_path / "missing")]) == 2
