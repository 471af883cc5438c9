"""The blocklist parser: every format, every skip reason, real lists, and properties."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from filterdns.lists.domains import InvalidName, normalize_domain
from filterdns.lists.parse import LOCAL_NAMES, iter_entries, iter_file, iter_lines, parse_bytes
from filterdns.lists.sourcereport import INVALID_NAME_REASONS, SKIP_REASONS, SourceReport

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "blocklists"

B = False  # block
A = True  # allow

# id, line, yielded entries, skip reasons with counts, hosts_from_urls
LINE_CASES: list[tuple[str, str, list[tuple[str, bool]], dict[str, int], int]] = [
    ("plain", "example.com", [("example.com", B)], {}, 0),
    ("plain-upper-trailing-dot", "Example.COM.", [("example.com", B)], {}, 0),
    (
        "plain-glued-upstream-bug",
        "rahaporn.commanhwax.top",
        [("rahaporn.commanhwax.top", B)],
        {},
        0,
    ),
    ("plain-underscore", "_dmarc.example.com", [("_dmarc.example.com", B)], {}, 0),
    ("plain-edge-hyphens", "-a-.example.com", [("-a-.example.com", B)], {}, 0),
    ("plain-punycode", "xn--bcher-kva.de", [("xn--bcher-kva.de", B)], {}, 0),
    ("plain-unicode", "bücher.de", [("xn--bcher-kva.de", B)], {}, 0),
    ("plain-leading-spaces", "   example.com   ", [("example.com", B)], {}, 0),
    ("plain-ipv4", "1.2.3.4", [], {"ip_address": 1}, 0),
    ("plain-ipv6", "2001:db8::1", [], {"ip_address": 1}, 0),
    ("plain-single-label", "localhost", [], {"single_label": 1}, 0),
    ("plain-tld", "com", [], {"single_label": 1}, 0),
    ("plain-empty-label", "a..example.com", [], {"empty_label": 1}, 0),
    ("plain-two-words", "exa mple!.com", [], {"unrecognised": 1}, 0),
    ("plain-bang-char", "ex!ample.com", [], {"bad_character": 1}, 0),
    ("plain-replacement-char", "ex\ufffdample.com", [], {"bad_character": 1}, 0),
    ("plain-local-dotted", "localhost.localdomain", [], {"local_name": 1}, 0),
    ("wildcard", "*.example.com", [("example.com", B)], {}, 0),
    ("wildcard-leading-dot", ".example.com", [("example.com", B)], {}, 0),
    ("wildcard-inner", "ads.*.example.com", [], {"bad_character": 1}, 0),
    ("wildcard-alone", "*.", [], {"empty_label": 1}, 0),
    # hosts
    ("hosts-zero", "0.0.0.0 example.com", [("example.com", B)], {}, 0),
    ("hosts-loopback", "127.0.0.1 example.com", [("example.com", B)], {}, 0),
    ("hosts-any6", ":: example.com", [("example.com", B)], {}, 0),
    ("hosts-loop6", "::1 example.com", [("example.com", B)], {}, 0),
    ("hosts-scoped6", "fe80::1%lo0 example.com", [("example.com", B)], {}, 0),
    ("hosts-other-ip", "192.168.1.10 printer.example.com", [("printer.example.com", B)], {}, 0),
    ("hosts-upper", "0.0.0.0 WWW.Example.COM", [("www.example.com", B)], {}, 0),
    (
        "hosts-many",
        "0.0.0.0 a.com b.com\tc.com",
        [("a.com", B), ("b.com", B), ("c.com", B)],
        {},
        0,
    ),
    ("hosts-tabs", "0.0.0.0\t\texample.com\t", [("example.com", B)], {}, 0),
    ("hosts-comment", "0.0.0.0 example.com # tracker", [("example.com", B)], {}, 0),
    ("hosts-comment-tab", "0.0.0.0 example.com\t#tracker", [("example.com", B)], {}, 0),
    ("hosts-localhost", "127.0.0.1 localhost", [], {"local_name": 1}, 0),
    ("hosts-localdomain", "127.0.0.1 localhost.localdomain", [], {"local_name": 1}, 0),
    ("hosts-broadcast", "255.255.255.255 broadcasthost", [], {"local_name": 1}, 0),
    ("hosts-local", "127.0.0.1 local", [], {"local_name": 1}, 0),
    ("hosts-ip6-names", "ff02::1 ip6-allnodes ip6-localhost", [], {"local_name": 2}, 0),
    ("hosts-zero-name", "0.0.0.0 0.0.0.0", [], {"local_name": 1}, 0),
    ("hosts-ip-only", "0.0.0.0", [], {"ip_address": 1}, 0),
    ("hosts-ip-only-comment", "1.0.0.1             # one.one.one.one", [], {"ip_address": 1}, 0),
    ("hosts-name-is-ip", "0.0.0.0 85.17.187.83", [], {"ip_address": 1}, 0),
    (
        "hosts-mixed-good-bad",
        "0.0.0.0 xxxhindi.to en localhost",
        [("xxxhindi.to", B)],
        {"single_label": 1, "local_name": 1},
        0,
    ),
    ("hosts-wildcard-name", "0.0.0.0 *.example.com", [("example.com", B)], {}, 0),
    # adblock
    ("adblock", "||example.com^", [("example.com", B)], {}, 0),
    ("adblock-important", "||example.com^$important", [("example.com", B)], {}, 0),
    ("adblock-options", "||example.com^$third-party,important", [("example.com", B)], {}, 0),
    ("adblock-no-caret", "||example.com", [("example.com", B)], {}, 0),
    ("adblock-pipe-end", "||example.com^|", [("example.com", B)], {}, 0),
    ("adblock-unanchored", "example.com^", [("example.com", B)], {}, 0),
    ("adblock-wildcard-prefix", "||*.example.com^", [("example.com", B)], {}, 0),
    ("adblock-allow", "@@||example.com^", [("example.com", A)], {}, 0),
    ("adblock-allow-options", "@@||example.com^$important", [("example.com", A)], {}, 0),
    ("adblock-allow-path", "@@||example.com/path", [], {"url_rule": 1}, 0),
    ("adblock-url-anchor", "|http://example.com/", [], {"url_rule": 1}, 0),
    ("adblock-path", "||example.com/ads/", [], {"url_rule": 1}, 0),
    ("adblock-inner-star", "||ads*.example.com^", [], {"url_rule": 1}, 0),
    ("adblock-regex-path", "/ads\\/banner[0-9]+/", [], {"url_rule": 1}, 0),
    ("adblock-port", "||example.com:8080^", [], {"url_rule": 1}, 0),
    ("adblock-badfilter", "||example.com^$badfilter", [], {"unsupported_option": 1}, 0),
    ("adblock-comment", "! Title: some list", [], {}, 0),
    ("adblock-header", "[Adblock Plus 2.0]", [], {}, 0),
    ("cosmetic-hide", "example.com##.ad", [], {"cosmetic_rule": 1}, 0),
    ("cosmetic-exception", "example.com#@#.ad", [], {"cosmetic_rule": 1}, 0),
    ("cosmetic-extended", "example.com#?#div:has(> a)", [], {"cosmetic_rule": 1}, 0),
    ("cosmetic-css", "example.com#$#body { padding: 0; }", [], {"cosmetic_rule": 1}, 0),
    ("cosmetic-spaces", "example.com##div[class='a b']", [], {"cosmetic_rule": 1}, 0),
    ("cosmetic-html", "example.com$$script[data-x]", [], {"cosmetic_rule": 1}, 0),
    ("cosmetic-html-spaces", 'example.com$$div[tag-content="a b"]', [], {"cosmetic_rule": 1}, 0),
    ("cosmetic-generic-is-comment", "##.banner", [], {}, 0),
    # dnsmasq
    ("dnsmasq-address", "address=/example.com/0.0.0.0", [("example.com", B)], {}, 0),
    ("dnsmasq-address-nxdomain", "address=/example.com/", [("example.com", B)], {}, 0),
    ("dnsmasq-address-many", "address=/a.com/b.com/::", [("a.com", B), ("b.com", B)], {}, 0),
    ("dnsmasq-server", "server=/example.com/", [("example.com", B)], {}, 0),
    ("dnsmasq-server-ip", "server=/example.com/1.2.3.4", [("example.com", B)], {}, 0),
    ("dnsmasq-local", "local=/example.com/", [("example.com", B)], {}, 0),
    ("dnsmasq-upper", "address=/Example.COM/0.0.0.0", [("example.com", B)], {}, 0),
    ("dnsmasq-upstream-only", "server=1.1.1.1", [], {"unrecognised": 1}, 0),
    ("dnsmasq-everything", "address=/#/0.0.0.0", [], {"bad_character": 1}, 0),
    ("dnsmasq-empty", "address=//0.0.0.0", [], {"empty_label": 1}, 0),
    # unbound
    (
        "unbound-zone",
        'local-zone: "example.com." always_nxdomain',
        [("example.com", B)],
        {},
        0,
    ),
    ("unbound-zone-unquoted", "local-zone: example.com refuse", [("example.com", B)], {}, 0),
    ("unbound-data", 'local-data: "example.com. A 0.0.0.0"', [("example.com", B)], {}, 0),
    (
        "unbound-data-ttl",
        'local-data: "example.com 3600 IN A 0.0.0.0"',
        [("example.com", B)],
        {},
        0,
    ),
    ("unbound-server", "server:", [], {}, 0),
    # host/path and URLs
    ("ut1-url", "example.com/some/path", [("example.com", B)], {}, 1),
    ("ut1-url-ip", "178.128.25.172/watch", [], {"ip_address": 1}, 0),
    ("url-http", "http://example.com/path", [("example.com", B)], {}, 1),
    ("url-https-port", "https://Example.com:8443/p?q=1", [("example.com", B)], {}, 1),
    ("url-userinfo", "http://user:pw@example.com/", [("example.com", B)], {}, 1),
    ("url-query-only", "https://example.com?x=1", [("example.com", B)], {}, 1),
    ("url-ipv6", "http://[2001:db8::1]/x", [], {"ip_address": 1}, 0),
    ("url-bad-host", "http://exa$mple.com/x", [], {"bad_character": 1}, 0),
    # comments and blanks
    ("blank", "", [], {}, 0),
    ("spaces", " \t ", [], {}, 0),
    ("comment", "# a comment", [], {}, 0),
    ("comment-indented", "   # a comment", [], {}, 0),
    ("inline-comment", "example.com # comment", [("example.com", B)], {}, 0),
    # hosts(5): `#` starts a comment anywhere on a line
    ("hash-in-name", "exa#mple.com", [], {"single_label": 1}, 0),
    ("hash-glued-plain", "a.com#b.com", [("a.com", B)], {}, 0),
    ("hash-glued-hosts", "0.0.0.0 a.com#b.com", [("a.com", B)], {}, 0),
    (
        "hash-glued-hosts-second",
        "0.0.0.0 a.com b.com#c.com d.com",
        [("a.com", B), ("b.com", B)],
        {},
        0,
    ),
    ("hash-glued-hosts-double", "0.0.0.0 a.com##b.com", [("a.com", B)], {}, 0),
    ("hash-glued-adblock", "||a.com^#b.com", [("a.com", B)], {}, 0),
    ("hash-glued-url", "https://a.com/path#frag", [("a.com", B)], {}, 1),
    ("hash-dnsmasq-server", "server=/a.com/#", [("a.com", B)], {}, 0),
    ("hash-then-dollars", "a.com#x$$y", [("a.com", B)], {}, 0),
    ("hash-cosmetic-after-comment", "a.com # see b.com##.ad", [("a.com", B)], {}, 0),
    # v2fly domain-list-community rules (lists.v2fly)
    ("v2fly-full", "full:www.example.com", [("www.example.com", B)], {}, 0),
    ("v2fly-domain", "domain:Example.com", [("example.com", B)], {}, 0),
    ("v2fly-tagged", "example.com @ads", [("example.com", B)], {}, 0),
    ("v2fly-two-tags", "full:a.example.com @cn @ads", [("a.example.com", B)], {}, 0),
    ("v2fly-regexp", r"regexp:^ad[0-9]+\.example\.com$", [], {"pattern_rule": 1}, 0),
    ("v2fly-keyword", "keyword:porn", [], {"pattern_rule": 1}, 0),
    ("v2fly-include", "include:category-porn", [], {"v2fly_include": 1}, 0),
    ("v2fly-include-tagged", "include:google @-cn", [], {"v2fly_include": 1}, 0),
    ("v2fly-full-bad", "full:exa$mple.com", [], {"bad_character": 1}, 0),
    ("v2fly-unknown-prefix", "ful:example.com", [], {"bad_character": 1}, 0),
    # garbage
    ("prose", "Permission is hereby granted", [], {"unrecognised": 1}, 0),
    ("regex-expression", "(^|[-/])(adult|porn)", [], {"url_rule": 1}, 0),
    # regex rules (kept beside the names: see test_regex_rules.py); refused ones
    ("regex-nested-repeat", "/(ads+)+x/", [], {"bad_regex": 1}, 0),
    ("regex-badfilter", "/^ads[.]/$badfilter", [], {"unsupported_option": 1}, 0),
]


@pytest.mark.parametrize(
    ("line", "entries", "skipped", "from_urls"),
    [pytest.param(*case[1:], id=case[0]) for case in LINE_CASES],
)
def test_line(line: str, entries: list[tuple[str, bool]], skipped: dict[str, int], from_urls: int):
    sut, report = parse_bytes(line.encode(), "t.txt")
    assert sut == entries
    assert dict(report.skipped) == skipped
    assert report.hosts_from_urls == from_urls
    assert report.lines == (1 if line else 0)
    assert report.entries == sum(1 for _, allow in entries if not allow)
    assert report.allow_entries == sum(1 for _, allow in entries if allow)
    for reason in skipped:
        assert report.examples[reason] == [f"t.txt:1: {line.strip()}"]


def test_every_reason_is_documented_and_exercised():
    exercised = {reason for case in LINE_CASES for reason in case[3]}
    assert exercised <= set(SKIP_REASONS)
    # the others have their own tests (regex_limit: test_regex_rules.py)
    assert set(SKIP_REASONS) - exercised <= {
        "label_too_long",
        "name_too_long",
        "bad_idna",
        "regex_limit",
    }
    assert set(INVALID_NAME_REASONS) <= set(SKIP_REASONS)
    assert all(desc and "\n" not in desc for desc in SKIP_REASONS.values())


NORMALIZED = [
    ("lower", "EXAMPLE.com", "example.com"),
    ("trailing-dot", "example.com.", "example.com"),
    ("whitespace", " example.com\t", "example.com"),
    ("deep", "a.b.c.d.e.f.example.co.uk", "a.b.c.d.e.f.example.co.uk"),
    ("underscore", "_dmarc.Example.com", "_dmarc.example.com"),
    ("hyphens", "-x-.example.com", "-x-.example.com"),
    ("digits-label", "0.0.0.0.beeglivesex.com", "0.0.0.0.beeglivesex.com"),
    ("unicode", "bücher.de", "xn--bcher-kva.de"),
    ("unicode-upper", "BÜCHER.de", "xn--bcher-kva.de"),
    ("unicode-tld", "example.рф", "example.xn--p1ai"),
    ("ideographic-dot", "bücher\u3002de", "xn--bcher-kva.de"),
    ("fullwidth-ascii", "\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com", "example.com"),
    ("punycode-kept", "xn--bcher-kva.de", "xn--bcher-kva.de"),
    ("label-63", "a" * 63 + ".com", "a" * 63 + ".com"),
    ("name-253", ".".join(["a" * 62] * 4) + ".b", ".".join(["a" * 62] * 4) + ".b"),
]


@pytest.mark.parametrize(("text", "expected"), [pytest.param(*c[1:], id=c[0]) for c in NORMALIZED])
def test_normalize_domain(text: str, expected: str):
    sut = normalize_domain(text)
    assert sut == expected
    assert normalize_domain(sut) == sut


INVALID = [
    ("empty", "", "empty_label"),
    ("dot", ".", "empty_label"),
    ("double-dot", "a..com", "empty_label"),
    ("leading-dot", ".example.com", "empty_label"),
    ("two-trailing-dots", "example.com..", "empty_label"),
    ("label-64", "a" * 64 + ".com", "label_too_long"),
    ("unicode-label-too-long", "ü" * 60 + ".com", "label_too_long"),
    ("name-254", ".".join(["a" * 62] * 4) + ".bc", "name_too_long"),
    ("space", "exa mple.com", "bad_character"),
    ("star", "*.example.com", "bad_character"),
    ("slash", "example.com/x", "bad_character"),
    ("replacement-char", "b\ufffdcher.de", "bad_character"),
    ("prohibited-idna", "a\u200e.com", "bad_idna"),
    ("ace-prefix-unicode", "xn--ü.com", "bad_idna"),
    ("ipv4", "192.168.1.1", "ip_address"),
    ("ipv6", "::1", "ip_address"),
    ("ipv6-scoped", "fe80::1%eth0", "ip_address"),
    ("numeric-tld", "1.2.3", "ip_address"),
    ("single-label", "localhost", "single_label"),
    ("tld", "COM.", "single_label"),
]


@pytest.mark.parametrize(("text", "reason"), [pytest.param(*c[1:], id=c[0]) for c in INVALID])
def test_normalize_domain_rejects(text: str, reason: str):
    with pytest.raises(InvalidName) as caught:
        normalize_domain(text)
    assert caught.value.reason == reason
    assert reason in INVALID_NAME_REASONS
    assert isinstance(caught.value, ValueError)


# A file with every encoding nuisance at once; line numbers are in the comments.
NASTY = (
    b"\xef\xbb\xbfexample.com\r\n"  # 1: BOM + CRLF
    b"# comment\r\n"  # 2
    b"0.0.0.0\tads.example.com\t# inline\r"  # 3: tabs, lone CR
    b"bad\xffname.com\r"  # 4: undecodable byte
    b"\r\n"  # 5: blank (CRLF)
    b"||tracker.example.net^$important\n"  # 6
    b"@@||good.example.net^\n"  # 7
    b"127.0.0.1 localhost\r"  # 8
    b"1.2.3.4\n"  # 9
    b"x.com/path\r\n"  # 10
    b"example.org##.banner\n"  # 11
    b"this line is not a list entry\n"  # 12
    b"2.3.4.5\n"  # 13
    b"3.4.5.6\n"  # 14
    b"4.5.6.7\n"  # 15
    b"\t last.example.com"  # 16: no final newline
)
NASTY_ENTRIES = [
    ("example.com", False),
    ("ads.example.com", False),
    ("tracker.example.net", False),
    ("good.example.net", True),
    ("x.com", False),
    ("last.example.com", False),
]


def _check_nasty_report(report: SourceReport) -> None:
    assert report.lines == 16
    assert report.entries == 5
    assert report.allow_entries == 1
    assert report.hosts_from_urls == 1
    assert report.duplicates == 0
    assert dict(report.skipped) == {
        "bad_character": 1,
        "local_name": 1,
        "ip_address": 4,
        "cosmetic_rule": 1,
        "unrecognised": 1,
    }
    assert report.examples == {
        "bad_character": ["nasty.txt:4: bad\ufffdname.com"],
        "local_name": ["nasty.txt:8: 127.0.0.1 localhost"],
        "ip_address": ["nasty.txt:9: 1.2.3.4", "nasty.txt:13: 2.3.4.5", "nasty.txt:14: 3.4.5.6"],
        "cosmetic_rule": ["nasty.txt:11: example.org##.banner"],
        "unrecognised": ["nasty.txt:12: this line is not a list entry"],
    }


def test_whole_file_bytes():
    sut, report = parse_bytes(NASTY, "nasty.txt")
    assert sut == NASTY_ENTRIES
    _check_nasty_report(report)


def test_whole_file_on_disk(tmp_path: Path):
    path = tmp_path / "nasty.txt"
    path.write_bytes(NASTY)
    report = SourceReport("nasty.txt")
    assert list(iter_file(path, report)) == NASTY_ENTRIES
    _check_nasty_report(report)


def test_whole_file_from_lines_with_terminators():
    # Iterating a binary stream keeps "\n" and leaves lone CRs inside a "line".
    report = SourceReport("nasty.txt")
    assert list(iter_entries(io.BytesIO(NASTY), report)) == NASTY_ENTRIES
    _check_nasty_report(report)


def test_cr_only_line_numbers():
    _, report = parse_bytes(b"a.com\rb.com\r\rbad!.com\r1.2.3.4\r", "mac.txt")
    assert report.lines == 5
    assert report.examples == {
        "bad_character": ["mac.txt:4: bad!.com"],
        "ip_address": ["mac.txt:5: 1.2.3.4"],
    }


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 64, 1 << 20])
def test_iter_lines_chunk_boundaries(chunk_size: int):
    data = b"a\r\nb\rc\n\r\n\rd\r\n\r\re" * 3 + b"\r"
    sut = list(iter_lines(io.BytesIO(data), chunk_size))
    assert sut == data.splitlines()


def test_examples_are_truncated_and_capped():
    data = b"\n".join(b"bad!" + bytes([97 + i]) * 100 + b".com" for i in range(5))
    _, report = parse_bytes(data, "s")
    assert report.skipped["bad_character"] == 5
    shown = report.examples["bad_character"]
    assert len(shown) == 3
    assert [s.split(": ", 1)[0] for s in shown] == ["s:1", "s:2", "s:3"]
    assert all(len(s.split(": ", 1)[1]) == 80 for s in shown)
    assert shown[0].endswith("...")


def test_to_json():
    _, report = parse_bytes(b"a.com\n@@||b.com^\nx.org/y\n1.2.3.4\n/^ads[.]/\n", "list.txt")
    assert report.to_json() == {
        "source": "list.txt",
        "lines": 5,
        "entries": 3,
        "allow_entries": 1,
        "duplicates": 0,
        "hosts_from_urls": 1,
        "skipped": {"ip_address": 1},
        "examples": {"ip_address": ["list.txt:4: 1.2.3.4"]},
        "content_lines": 5,
        "invalid_lines": 0,
        "undecodable_lines": 0,
        "nul_lines": 0,
        "regex_entries": 1,
    }


def test_json_round_trip():
    _, report = parse_bytes(NASTY, "nasty.txt")
    report.duplicates = 2
    data = report.to_json()
    sut = SourceReport.from_json(json.loads(json.dumps(data | {"error": None})))
    assert sut == report


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({}, id="empty"),
        pytest.param({"source": "s", "lines": "x", "skipped": [1], "examples": 3}, id="ill-typed"),
        pytest.param({"source": "s", "entries": True, "skipped": {"a": "b"}}, id="bad-values"),
    ],
)
def test_from_json_is_lenient(data: dict[str, object]):
    sut = SourceReport.from_json(data)
    assert (sut.lines, sut.entries, dict(sut.skipped), sut.examples) == (0, 0, {}, {})


def test_streams_without_reading_everything():
    def endless() -> Iterator[bytes]:
        for i in itertools.count():
            yield f"0.0.0.0 host{i}.example.com\n".encode()

    report = SourceReport("endless")
    sut = list(itertools.islice(iter_entries(endless(), report), 3))
    assert [name for name, _ in sut] == [f"host{i}.example.com" for i in range(3)]


def test_report_counts_land_when_closed_early():
    report = SourceReport("s")
    entries = iter_entries([b"a.com", b"b.com", b"c.com"], report)
    next(entries)
    entries.close()  # type: ignore[attr-defined]
    assert report.lines == 1
    assert report.entries == 1


def test_empty_input():
    sut, report = parse_bytes(b"", "empty")
    assert sut == []
    assert report.lines == 0


# ---------------------------------------------------------------------------------------------
# Real lists, read in place.

needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"shared blocklist data not found at {DATA}"
)

# relative path -> (min entries, max entries, names that must be yielded)
REAL: dict[str, tuple[int, int, set[str]]] = {
    "stevenblack-unified_via-hagezi/stevenblack.hosts.txt": (
        115_000,
        125_000,
        {"doubleclick.net", "ad.doubleclick.net", "googleadservices.com", "000free.us"},
    ),
    "sinfonietta/pornography-hosts": (
        55_000,
        65_000,
        {"pornhub.com", "xvideos.com", "007angels.com", "rahaporn.commanhwax.top"},
    ),
    "sinfonietta/gambling-hosts": (2_500, 2_800, {"10bet.com"}),
    "sinfonietta/social-hosts": (3_100, 3_400, {"www.facebook.com", "tiktok.com"}),
    "sinfonietta/snuff-hosts": (20, 30, {"bitcheese.net", "bestgore.com"}),
    "ut1/malware/domains": (210_000, 220_000, {"0-1-x.009418154.xyz"}),
    "ut1/phishing/domains": (210_000, 220_000, set()),
    "ut1/gambling/domains": (30_000, 33_000, {"bet365.com", "pokerstars.com", "winamax.fr"}),
    "ut1/dynamic-dns/domains": (2_000, 2_100, {"afshin.ir", "giswebservice.com"}),
    "ut1/adult/urls": (1_000, 1_100, {"020sextoy.com", "1512h.itch.io"}),
    "ut1/malware/urls": (18_000, 19_500, {"0001-5cf.pages.dev"}),
    "dibdot-doh/doh-domains_overall.txt": (
        1_900,
        1_920,
        {"dns.google", "cloudflare-dns.com", "dns.quad9.net", "zxcvb.pp.ua"},  # last, no newline
    ),
    "dibdot-doh/doh-ipv4.txt": (0, 0, set()),
    "dibdot-doh/doh-ipv6.txt": (0, 0, set()),
}
KNOWN = set().union(*(names for _, _, names in REAL.values()))


@pytest.fixture(scope="module")
def parsed_real() -> dict[str, tuple[SourceReport, set[str]]]:
    """Every file under blocklists/, parsed once: report and the KNOWN names it yielded."""
    out: dict[str, tuple[SourceReport, set[str]]] = {}
    for path in sorted(p for p in DATA.rglob("*") if p.is_file()):
        rel = path.relative_to(DATA).as_posix()
        report = SourceReport(rel)
        found: set[str] = set()
        for name, _ in iter_file(path, report):
            if name in KNOWN:
                found.add(name)
            assert name not in LOCAL_NAMES, (rel, name)
            # `localhost.sec.qq.com` is a real name; only the hosts-file local names are not
            assert not (name.startswith("ip6-") and "." not in name), (rel, name)
        out[rel] = (report, found)
    return out


@needs_data
def test_real_every_file_parses(parsed_real: dict[str, tuple[SourceReport, set[str]]]):
    assert len(parsed_real) > 100
    assert sum(report.entries for report, _ in parsed_real.values()) > 900_000
    for rel, (report, _) in parsed_real.items():
        assert report.allow_entries == 0, rel
        assert report.lines > 0 or (DATA / rel).stat().st_size == 0, rel
        for reason, shown in report.examples.items():
            assert reason in SKIP_REASONS
            assert all(s.startswith(f"{rel}:") for s in shown)


@needs_data
@pytest.mark.parametrize("rel", sorted(REAL))
def test_real_list(rel: str, parsed_real: dict[str, tuple[SourceReport, set[str]]]):
    low, high, names = REAL[rel]
    report, found = parsed_real[rel]
    assert low <= report.entries <= high, report.to_json()
    assert found >= names


@needs_data
def test_real_ip_lists_are_all_addresses(parsed_real: dict[str, tuple[SourceReport, set[str]]]):
    report, _ = parsed_real["dibdot-doh/doh-ipv4.txt"]
    assert set(report.skipped) == {"ip_address"}
    assert report.skipped["ip_address"] == report.lines


@needs_data
def test_real_ut1_ip_entries_are_counted(parsed_real: dict[str, tuple[SourceReport, set[str]]]):
    report, _ = parsed_real["ut1/malware/domains"]
    assert report.skipped["ip_address"] > 1_000
    assert report.entries + report.skipped.total() == report.lines


@needs_data
def test_real_names_are_normalised():
    path = DATA / "sinfonietta" / "pornography-hosts"
    report = SourceReport("p")
    for name, _ in iter_file(path, report):
        assert normalize_domain(name) == name


# ---------------------------------------------------------------------------------------------
# Properties.

FRAGMENTS = [
    "0.0.0.0",
    "127.0.0.1",
    "::1",
    "fe80::1%lo0",
    "example.com",
    "Bücher.de",
    "xn--",
    "localhost",
    "ip6-",
    "||",
    "|",
    "@@",
    "^",
    "$important",
    "$badfilter",
    "$$",
    "##",
    "#@#",
    "#",
    " # ",
    "!",
    "[Adblock Plus 2.0]",
    "*.",
    "*",
    ".",
    "..",
    "/",
    "address=/",
    "server=/",
    "local=/",
    "local-zone: ",
    "local-data: ",
    '"',
    "server:",
    "http://",
    "https://",
    ":8080",
    "@",
    "[",
    "]",
    " ",
    "\t",
    "\ufeff",
    "\ufffd",
    "\u3002",
    "\u200e",
    "a" * 64,
]
fragment_lines = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=8
).map("".join)
fast = settings(max_examples=200, deadline=None)


def _check(entries: list[tuple[str, bool]], report: SourceReport) -> None:
    for name, _ in entries:
        assert normalize_domain(name) == name
        assert name not in LOCAL_NAMES
    # a regex rule is an entry of its list too, kept beside the names
    regex_allows = sum(allow for _pattern, allow, _line in report.regexes)
    assert report.regex_entries == len(report.regexes)
    assert report.entries == sum(1 for _, allow in entries if not allow) + (
        report.regex_entries - regex_allows
    )
    assert report.allow_entries == sum(1 for _, allow in entries if allow) + regex_allows
    for reason, count in report.skipped.items():
        assert reason in SKIP_REASONS
        assert 1 <= len(report.examples[reason]) <= min(count, 3)


@fast
@given(st.binary(max_size=300))
def test_never_raises_on_bytes(data: bytes):
    entries, report = parse_bytes(data, "fuzz")
    _check(entries, report)
    assert report.lines == len(data.splitlines())


@fast
@given(st.lists(fragment_lines, max_size=10), st.sampled_from(["\n", "\r\n", "\r"]))
def test_never_raises_on_mixed_formats(lines: list[str], newline: str):
    data = newline.join(lines).encode("utf-8", "surrogatepass")
    entries, report = parse_bytes(data, "fuzz")
    _check(entries, report)
    again = SourceReport("fuzz")
    assert list(iter_entries(io.BytesIO(data), again)) == entries
    assert again.to_json() == report.to_json()


@fast
@given(st.binary(max_size=200), st.integers(min_value=1, max_value=8))
def test_iter_lines_matches_splitlines(data: bytes, chunk_size: int):
    assert list(iter_lines(io.BytesIO(data), chunk_size)) == data.splitlines()


@fast
@given(st.one_of(st.text(max_size=40), fragment_lines))
def test_normalize_is_idempotent(text: str):
    try:
        once = normalize_domain(text)
    except InvalidName as exc:
        assert exc.reason in INVALID_NAME_REASONS
        return
    assert normalize_domain(once) == once
    assert once.isascii()
    assert "." in once


labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
domains = st.lists(labels, min_size=1, max_size=3).map(lambda ls: ".".join([*ls, "example"]))
# Text with no line break of any kind (splitlines breaks on more than \n and \r).
comment_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Zl", "Zp", "Cs")), max_size=30
)


@fast
@given(st.lists(domains, min_size=1, max_size=4), comment_text, st.sampled_from(["", " ", "\t"]))
def test_a_hash_starts_a_comment_anywhere_on_a_hosts_line(names: list[str], comment: str, gap: str):
    line = f"0.0.0.0 {' '.join(names)}{gap}#{comment}"
    entries, _ = parse_bytes(line.encode(), "hosts")
    assert entries == [(name, B) for name in names]


@fast
@given(domains, comment_text)
def test_a_hash_ends_a_plain_name(name: str, comment: str):
    assume(not re.match(r"@?[?$%]{0,2}@?#", comment))  # `x.com##.ad`: an adblock cosmetic rule
    entries, _ = parse_bytes(f"{name}#{comment}".encode(), "plain")
    assert entries == [(name, B)]


# What tells a list from something that is not one: content, invalid, undecodable, NUL lines.
TEXT_CASES = [
    pytest.param(b"# title\n\na.com\n0.0.0.0 b.com\n", (2, 0, 0, 0), id="list"),
    pytest.param(
        b"! adblock\n[Adblock Plus 2.0]\n||a.com^\nx.com##.ad\n", (2, 0, 0, 0), id="adblock"
    ),
    pytest.param(b"a.com\n1.2.3.4\n127.0.0.1 localhost\n", (3, 0, 0, 0), id="valid-not-names"),
    pytest.param(b"a.com\nhello\n<html>\nsee a b c\n", (4, 3, 0, 0), id="invalid-lines"),
    pytest.param(b"0.0.0.0 a.com localhost\n0.0.0.0 bad! b.com\n", (2, 0, 0, 0), id="mixed-hosts"),
    pytest.param(b"a.com\n\xff\xfe\xfd\nb\xe9.com\n", (3, 2, 2, 0), id="undecodable"),
    pytest.param(b"a.com\nb.c\x00m\n\x00\x01\x02\n", (3, 2, 0, 2), id="nul"),
]


@pytest.mark.parametrize(("data", "counts"), TEXT_CASES)
def test_text_and_validity_counts(data: bytes, counts: tuple[int, int, int, int]):
    _, report = parse_bytes(data, "t")
    assert (
        report.content_lines,
        report.invalid_lines,
        report.undecodable_lines,
        report.nul_lines,
    ) == counts


def test_a_line_without_a_break_is_cut_so_memory_stays_bounded():
    junk = b"x" * (3 * (1 << 20))
    lines = list(iter_lines(io.BytesIO(junk + b"\na.com\n"), chunk_size=1 << 16))
    assert lines[-1] == b"a.com"
    assert max(map(len, lines)) <= (1 << 20) + (1 << 16)


def test_a_gzip_list_is_read_transparently(tmp_path: Path):
    text = b"# header\nexample.com\n0.0.0.0 ads.example.org\n@@||ok.example.com^\n"
    plain, packed = tmp_path / "list.txt", tmp_path / "list.txt.gz"
    plain.write_bytes(text)
    packed.write_bytes(gzip.compress(text, mtime=0))
    first, second = SourceReport("plain"), SourceReport("packed")
    assert (
        list(iter_file(packed, second))
        == list(iter_file(plain, first))
        == [
            ("example.com", False),
            ("ads.example.org", False),
            ("ok.example.com", True),
        ]
    )
    assert second.to_json() | {"source": "plain"} == first.to_json()
