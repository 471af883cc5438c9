"""Reading blocklists: a lenient, positioned, streaming parser for every common list format.

One file may mix formats; each line is recognised on its own:

    example.com                          plain domain (UT1 `domains`, DoH lists)
    *.example.com   .example.com         wildcard: the name itself (it covers its subdomains anyway)
    0.0.0.0 a.com b.com  # comment       hosts: any IPv4/IPv6 first field, then one or more names
    ||example.com^$important             adblock block rule (options are dropped)
    @@||example.com^                     adblock exception -> an allow entry
    /^ads?[0-9]*[.]/   @@/^cdn[.]/$third-party   regex rule, `@@` exception (`lists.adblockregex`)
    address=/a.com/b.com/0.0.0.0         dnsmasq `address=`, `server=`, `local=` (every name)
    local-zone: "example.com." refuse    unbound `local-zone:` (any type) and `local-data:`
    example.com/some/path                host/path (UT1 `urls`) or a pasted `https://host:port/path`
                                         -> the host is kept and counted in `hosts_from_urls`
    full:a.com   domain:a.com   a.com @ads    v2fly rules (`lists.v2fly`): the name; `@attr` tags
                                         dropped; `regexp:`/`keyword:` skipped as `pattern_rule`,
                                         `include:` as `v2fly_include`

Blank lines, `#` and `!` comments and `[Adblock Plus 2.0]` headers are only counted as lines.
As in hosts(5), `#` starts a comment anywhere on a line (`0.0.0.0 a.com#b.com` lists a.com only),
except in adblock element-hiding rules (`x.com##.ad`, skipped as `cosmetic_rule`) and dnsmasq
`address=/#/` lines, where it is syntax. Every other line that yields nothing is counted under one
of `SKIP_REASONS`, with the first examples as "source:line: text". Nothing in a list is ever fatal:
undecodable bytes, a BOM, CRLF / lone CR line endings and tabs are all taken.

Alongside, the report counts what tells a list from something that is not one (see
`lists.validate`): content lines (neither blank nor comments), the content lines that were
invalid (they yielded nothing, for a reason in `INVALID_LINE_REASONS`), lines that are not UTF-8,
and lines holding a NUL byte.

Parsing streams: names are yielded as they are read, so the index builder can hash them without
the whole list in memory. The per-line hot path (a lower-case plain name or `0.0.0.0 name`) is one
regular-expression match on the raw bytes and one ASCII decode of the name.
"""

from __future__ import annotations

import gzip
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from filterdns.lists.adblockregex import keep_regex, regex_rule
from filterdns.lists.domains import MAX_NAME, InvalidName, is_ip, normalize_domain
from filterdns.lists.sourcereport import INVALID_LINE_REASONS, SourceReport
from filterdns.lists.v2fly import PATTERN_KINDS, split_attrs

# The hot path on raw bytes: `name` or `<sink> name`, lower-case ASCII, nothing else.
_HOT = re.compile(
    rb"[ \t]*(?:(?:0\.0\.0\.0|127\.0\.0\.1|::1?)[ \t]+)?"
    rb"((?:[a-z0-9_-]{1,63}\.)+(?![0-9]+[ \t]*\Z)[a-z0-9_-]{1,63})[ \t]*",
).fullmatch
# A line that is one dotted-quad (UT1 `domains` hold thousands): skipped without further work.
_HOT_IPV4 = re.compile(rb"[ \t]*[0-9]{1,3}(?:\.[0-9]{1,3}){3}[ \t]*").fullmatch
_INLINE_COMMENT = re.compile(r"\s#").search
_COSMETIC = re.compile(r"#@?[?$%]{0,2}@?#|\$@?\$").search
_COSMETIC_AT = re.compile(r"#@?[?$%]{0,2}@?#").match  # an element-hiding marker, at a position

# Names a hosts file maps to itself; never entries. `ip6-*` single labels are local too.
LOCAL_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "0.0.0.0",
        "ip6-localhost",
        "ip6-loopback",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
        "ip6-allrouters",
        "ip6-allhosts",
    }
)
_LOCAL_DOTTED = frozenset(n for n in LOCAL_NAMES if "." in n and not n[-1].isdigit())
_LOCAL_DOTTED_BYTES = frozenset(n.encode("ascii") for n in _LOCAL_DOTTED)
_SINKS = frozenset({"0.0.0.0", "127.0.0.1", "::", "::1", "0:0:0:0:0:0:0:0", "::0"})
_DNSMASQ_KEYS = frozenset({"address", "server", "local"})
_BOM = b"\xef\xbb\xbf"
CHUNK_SIZE = 1 << 20
MAX_LINE = 1 << 20  # a "line" longer than this (binary junk) is cut, so memory stays bounded

_BLOCK, _ALLOW, _FROM_URL, _SKIP, _IGNORE, _REGEX, _REGEX_ALLOW = range(7)  # slow-path kinds
_Item = tuple[str, int]


def _name(text: str, kind: int = _BLOCK) -> _Item:
    """One name as an item: ("name", kind) or ("reason", _SKIP); `*.x` and `.x` mean x."""
    if text.startswith("*."):
        text = text[2:]
    elif text.startswith("."):
        text = text[1:]
    try:
        name = normalize_domain(text)
    except InvalidName as exc:
        return exc.reason, _SKIP
    if name in _LOCAL_DOTTED:
        return "local_name", _SKIP
    return name, kind


def _host_name(hostport: str) -> _Item:
    """The host of `user@host:port` (from a URL or a host/path entry) as an item."""
    host = hostport.rpartition("@")[2]
    if host.startswith("["):  # [IPv6]:port
        return "ip_address", _SKIP
    head, colon, port = host.rpartition(":")
    if colon and (port.isdigit() or not port) and ":" not in head:
        host = head
    return _name(host, _FROM_URL)


def _adblock(body: str, kind: int) -> _Item:
    """An adblock network rule (without its `@@`)."""
    if body.startswith("/") and (regex := regex_rule(body)) is not None:
        text, ok = regex
        return text, (_REGEX_ALLOW if kind == _ALLOW else _REGEX) if ok else _SKIP
    if _COSMETIC(body):
        return "cosmetic_rule", _SKIP
    if body.startswith("||"):
        body = body[2:]
    elif body.startswith(("|", "/")):
        return "url_rule", _SKIP
    body, dollar, options = body.partition("$")
    if dollar and "badfilter" in (o.strip().lower() for o in options.split(",")):
        return "unsupported_option", _SKIP
    if body.endswith("|"):
        body = body[:-1]
    if body.endswith("^"):
        body = body[:-1]
    if body.startswith("*."):
        body = body[2:]
    if any(c in body for c in "^/*|:?="):
        return "url_rule", _SKIP
    return _name(body, kind)


def _dnsmasq(value: str) -> list[_Item]:
    """`/a.com/b.com/target` of address=, server=, local= -> every name between slashes."""
    if not value.startswith("/") or value.count("/") < 2:
        return [("unrecognised", _SKIP)]
    return [_name(part) for part in value.split("/")[1:-1]]


def _token(tok: str) -> list[_Item]:
    """A line that is one token (after comment removal)."""
    first = tok[0]
    if first == "!" or (first == "[" and tok.endswith("]")):
        return [("", _IGNORE)]
    if tok.startswith("@@"):
        return [_adblock(tok[2:], _ALLOW)]
    kind, colon, value = tok.partition(":")
    if colon and kind.lower() in _V2FLY:
        return [_v2fly(kind.lower(), value)]
    if first in "|/":
        return [_adblock(tok, _BLOCK)]
    if "=" in tok:
        key, _, value = tok.partition("=")
        if key.lower() in _DNSMASQ_KEYS:
            return _dnsmasq(value)
    if "://" in tok:
        rest = tok.split("://", 1)[1]
        return [_host_name(re.split(r"[/?#]", rest, maxsplit=1)[0])]
    if "^" in tok or "$" in tok:
        return [_adblock(tok, _BLOCK)]
    if "/" in tok:
        return [_host_name(tok.split("/", 1)[0])]
    if tok.lower() == "server:":
        return [("", _IGNORE)]
    return [_name(tok)]


_V2FLY = frozenset({"full", "domain", "include", *PATTERN_KINDS})


def _v2fly(kind: str, value: str) -> _Item:
    """A prefixed v2fly rule: `full:` and `domain:` give the name (the index blocks subdomains
    either way); patterns and includes are skipped."""
    if kind in PATTERN_KINDS:
        return "pattern_rule", _SKIP
    if kind == "include":
        return "v2fly_include", _SKIP
    return _name(value)


def _hosts_name(tok: str) -> _Item:
    low = tok.lower()
    if low in LOCAL_NAMES or ("." not in low and low.startswith("ip6-")):
        return "local_name", _SKIP
    return _name(tok)


def _is_hosts_line(text: str) -> bool:
    """Whether a line starts with an address, as a hosts file line does."""
    head = text.split(None, 1)[0]
    return head in _SINKS or is_ip(head)


def _line(parts: list[str]) -> list[_Item]:
    """The slow path for one split line: every format, every reason."""
    if len(parts) == 1:
        return _token(parts[0])
    if parts[-1].startswith("@") and (untagged := split_attrs(parts)) is not None:
        return _line(untagged)  # a v2fly rule with `@attr` tags
    head = parts[0]
    if head[0] == "!" or (head[0] == "[" and parts[-1].endswith("]")):
        return [("", _IGNORE)]
    if head in _SINKS or is_ip(head):
        return [_hosts_name(tok) for tok in parts[1:]]
    key = head.lower()
    if key in ("local-zone:", "local-data:"):
        return [_name(parts[1].strip('"'))]
    if _COSMETIC(head):  # an HTML rule whose selector has spaces: `x.com$$div[a="b c"]`
        return [("cosmetic_rule", _SKIP)]
    return [("unrecognised", _SKIP)]


@dataclass(slots=True)
class _Counts:
    """What the slow path counts while a source is read, added to its report at the end."""

    entries: int = 0
    allows: int = 0
    from_urls: int = 0
    content: int = 0
    invalid: int = 0
    undecodable: int = 0
    nul: int = 0

    def into(self, report: SourceReport, lines: int, fast: int) -> None:
        report.lines += lines
        report.entries += fast + self.entries
        report.allow_entries += self.allows
        report.hosts_from_urls += self.from_urls
        report.content_lines += fast + self.content
        report.invalid_lines += self.invalid
        report.undecodable_lines += self.undecodable
        report.nul_lines += self.nul


def _parse(lines: Iterable[bytes], report: SourceReport) -> Iterator[tuple[str, bool]]:
    """The parser proper, over lines without terminators; counts land in `report` at the end.

    The hot path (a plain lower-case name, or `0.0.0.0 name`) stays inline: one regular
    expression on the raw bytes. Every other line goes to `_slow`.
    """
    it = iter(lines)
    first = next(it, None)
    if first is None:
        return
    if first.startswith(_BOM):
        first = first[len(_BOM) :]
    hot, hot_ipv4, local_dotted = _HOT, _HOT_IPV4, _LOCAL_DOTTED_BYTES
    counts = _Counts()
    n_lines = fast = 0
    try:
        for raw in itertools.chain((first,), it):
            n_lines += 1
            m = hot(raw)
            if m is not None:
                name = m[1]
                if len(name) <= MAX_NAME and name not in local_dotted:
                    fast += 1  # one entry and one content line: one count keeps the path short
                    yield name.decode("ascii"), False
                    continue
            elif hot_ipv4(raw):
                counts.content += 1
                report.skip("ip_address", n_lines, raw.decode("ascii"))
                continue
            yield from _slow(raw, n_lines, report, counts)
    finally:
        counts.into(report, n_lines, fast)


def _slow(
    raw: bytes, number: int, report: SourceReport, counts: _Counts
) -> Iterator[tuple[str, bool]]:
    """One line of any format: its entries, its skips counted with their reasons."""
    line = _decode(raw, counts)
    parts = _parts(line, number, report, counts)
    if not parts:
        return
    used = bad = False
    counted = True
    for text, kind in _line(parts):
        if kind == _SKIP:
            report.skip(text, number, line)
            bad = bad or text in INVALID_LINE_REASONS
        elif kind == _IGNORE:  # an adblock comment or header, unbound's `server:`
            counted = False
        elif kind >= _REGEX:
            used = True
            if keep_regex(report, text, kind == _REGEX_ALLOW, number, line):
                counts.entries += kind == _REGEX
                counts.allows += kind == _REGEX_ALLOW
        else:
            used = True
            counts.entries += kind != _ALLOW
            counts.allows += kind == _ALLOW
            counts.from_urls += kind == _FROM_URL
            yield text, kind == _ALLOW
    counts.content += counted
    counts.invalid += bad and not used


def _decode(raw: bytes, counts: _Counts) -> str:
    if b"\0" in raw:
        counts.nul += 1
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        counts.undecodable += 1
        return raw.decode("utf-8", "replace")


def _parts(line: str, number: int, report: SourceReport, counts: _Counts) -> list[str]:
    """The fields of a line once comments are gone ([] for a comment or a cosmetic rule)."""
    if "#" not in line:
        return line.split()
    stripped = line.strip()
    if not stripped or stripped[0] == "#":
        return []
    inline = _INLINE_COMMENT(stripped)
    if inline:
        stripped = stripped[: inline.start()]
    cut = stripped.find("#")
    if cut >= 0:
        if _COSMETIC_AT(stripped, cut) and not _is_hosts_line(stripped):
            counts.content += 1
            report.skip("cosmetic_rule", number, line)
            return []
        if "=/" not in stripped:  # dnsmasq `address=/#/...`: there `#` is syntax
            stripped = stripped[:cut]  # hosts(5): a comment anywhere on a line
    return stripped.split()


def _split_lines(raw: bytes) -> list[bytes]:
    return raw.splitlines() or [b""]


def iter_entries(lines: Iterable[bytes], report: SourceReport) -> Iterator[tuple[str, bool]]:
    """Yield (normalised name, is_allow) for each usable entry of `lines`, in order.

    Lines may keep their terminators (`\\n`, `\\r\\n`) and may hold lone `\\r` breaks; each
    physical line is numbered. Counts and skips are added to `report` when the iterator is
    exhausted or closed.
    """
    return _parse(itertools.chain.from_iterable(map(_split_lines, lines)), report)


def parse_bytes(data: bytes, source: str) -> tuple[list[tuple[str, bool]], SourceReport]:
    """Parse a whole list held in memory (tests, small files): (entries, report)."""
    report = SourceReport(source)
    return list(_parse(data.splitlines(), report)), report


def _line_batches(stream: BinaryIO, chunk_size: int) -> Iterator[list[bytes]]:
    """Lists of whole physical lines, one list per chunk read (see iter_lines)."""
    buf = bytearray()
    while chunk := stream.read(chunk_size):
        buf += chunk
        end = len(buf) - 1 if buf.endswith(b"\r") else len(buf)  # may be half of a CRLF
        cut = max(buf.rfind(b"\n", 0, end), buf.rfind(b"\r", 0, end))
        if cut >= 0:
            yield bytes(buf[: cut + 1]).splitlines()
            del buf[: cut + 1]
        elif len(buf) > MAX_LINE:  # no line break in a megabyte: junk, taken in pieces
            yield bytes(buf).splitlines()
            buf.clear()
    if buf:
        yield bytes(buf).splitlines()


def iter_lines(stream: BinaryIO, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """The physical lines of a binary stream, split on LF, CRLF or lone CR, read in chunks.

    Only one chunk (plus a partial line) is held at a time; a CRLF cut between two chunks still
    counts as one line break.
    """
    return itertools.chain.from_iterable(_line_batches(stream, chunk_size))


def _file_batches(path: Path) -> Iterator[list[bytes]]:
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as packed:
            yield from _line_batches(cast(BinaryIO, packed), CHUNK_SIZE)
        return
    with path.open("rb") as stream:
        yield from _line_batches(stream, CHUNK_SIZE)


def iter_file(path: Path, report: SourceReport) -> Iterator[tuple[str, bool]]:
    """Stream the entries of a list file (read in binary, never whole in memory); a file named
    `*.gz` is decompressed as it is read (the big shipped lists are stored that way)."""
    return _parse(itertools.chain.from_iterable(_file_batches(path)), report)
