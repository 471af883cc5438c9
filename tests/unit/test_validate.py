"""Judging a parsed list source: text or not, entries, invalid lines, shrinking; good copies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from filterdns.lists.parse import parse_bytes
from filterdns.lists.validate import (
    Stamp,
    content_problem,
    good_entries,
    judge,
    read_record,
    shrink_problem,
    write_record,
)


def names(count: int, prefix: str = "site") -> bytes:
    return "".join(f"0.0.0.0 {prefix}{i}.example.org\n" for i in range(count)).encode()


GOOD = b"# a hosts file\n" + names(50)

# id, content, the start of the reason (None: accepted)
CONTENT_CASES = [
    pytest.param(GOOD, None, id="hosts-list"),
    pytest.param(b"||a.com^\nexample.org##.ad\nb.com$$script\n! c\n", None, id="adblock"),
    pytest.param(b"a.com\n1.2.3.4\n5.6.7.8\n9.9.9.9\n", None, id="mostly-addresses"),
    pytest.param(b"a.com\nb.com\nnot a name\n", None, id="a-third-invalid"),
    pytest.param(GOOD[:600] + b"\x00" + GOOD[600:], "not text: NUL bytes", id="one-nul-byte"),
    pytest.param(bytes(range(256)) * 40 + b"\na.com\n", "not text: NUL", id="binary"),
    pytest.param(
        b"\n".join(b"\xa9\xff\xfe%d.example.org" % i for i in range(20)) + b"\na.com\n",
        "not text: 20 of 21 lines are not UTF-8",
        id="mostly-undecodable",
    ),
    pytest.param(b"", "no usable entry in 0 lines", id="empty"),
    pytest.param(b"# nothing\n\n# here\n", "no usable entry in 3 lines", id="comments-only"),
    pytest.param(b"<html><body>502 Bad Gateway</body></html>\n", "no usable entry", id="html-page"),
    pytest.param(
        b"Lorem ipsum dolor sit amet\nexample.org\nconsectetur adipiscing\nsed do eiusmod\n",
        "mostly invalid: 3 of 4 lines are not list entries, e.g. junk:1: Lorem ipsum",
        id="prose-with-an-accidental-name",
    ),
    pytest.param(
        b"a.com\n" + b"".join(b"word%d\n" % i for i in range(10)),
        "mostly invalid: 10 of 11 lines",
        id="single-labels",
    ),
]


@pytest.mark.parametrize(("data", "reason"), CONTENT_CASES)
def test_what_is_not_a_list(data: bytes, reason: str | None) -> None:
    _, report = parse_bytes(data, "junk")
    problem = content_problem(report)
    if reason is None:
        assert problem is None
    else:
        assert problem is not None and problem.startswith(reason), problem


@pytest.mark.parametrize(
    ("previous", "entries", "max_shrink", "reason"),
    [
        pytest.param(10_000, 900, 90.0, "91 % smaller than the last good copy (10,000 -> 900 "
                     "entries)", id="drop-91%-rejected"),
        pytest.param(10_000, 1_100, 90.0, None, id="drop-89%-accepted"),
        pytest.param(10_000, 1_000, 90.0, None, id="drop-exactly-90%-accepted"),
        pytest.param(12_034, 702, 90.0, "94 % smaller than the last good copy (12,034 -> 702 "
                     "entries)", id="the-readme-example"),
        pytest.param(1_000, 500, 90.0, None, id="half-accepted"),
        pytest.param(1_000, 500, 40.0, "50 % smaller", id="stricter-setting"),
        pytest.param(10_000, 1, 100.0, None, id="disabled"),
        pytest.param(1_000, 999, 0.0, "0 % smaller", id="zero-rejects-any-drop"),
        pytest.param(None, 1, 90.0, None, id="no-copy-yet"),
        pytest.param(100, 5_000, 90.0, None, id="growth"),
    ],
)  # fmt: skip
def test_shrinking(
    previous: int | None, entries: int, max_shrink: float, reason: str | None
) -> None:
    problem = shrink_problem(entries, previous, max_shrink)
    if reason is None:
        assert problem is None
    else:
        assert problem is not None and problem.startswith(reason), problem


@pytest.mark.parametrize(
    ("count", "accepted"),
    [
        pytest.param(500, False, id="shrunk-95%"),
        pytest.param(1_500, True, id="shrunk-85%"),
    ],
)
def test_judge_a_shrunk_list_against_its_last_good_copy(count: int, accepted: bool) -> None:
    _, report = parse_bytes(names(count), "list")
    assert (judge(report, 10_000, 90.0) is None) is accepted


def test_judge_checks_content_before_size() -> None:
    _, report = parse_bytes(b"\x00" + names(20_000), "list")
    reason = judge(report, 10_000, 90.0)
    assert reason is not None and reason.startswith("not text")


def test_a_good_copy_remembers_its_entries(tmp_path: Path) -> None:
    copy = tmp_path / "copy.txt"
    copy.write_bytes(names(30))
    source = Stamp(123, 456)
    write_record(copy, 30, source)
    record = read_record(copy)
    assert record is not None and (record.entries, record.source) == (30, source)
    assert good_entries(copy) == 30


def test_a_record_that_no_longer_fits_its_copy_is_recounted(tmp_path: Path) -> None:
    copy = tmp_path / "copy.txt"
    copy.write_bytes(names(30))
    write_record(copy, 30)
    copy.write_bytes(names(40))  # changed behind the record's back
    os.utime(copy, ns=(1, 1))
    assert read_record(copy) is None
    assert good_entries(copy) == 40
    assert read_record(copy) is not None  # recorded again


def test_a_junk_copy_is_nothing_to_compare_with(tmp_path: Path) -> None:
    copy = tmp_path / "copy.txt"
    copy.write_bytes(b"\x00\x01 junk a.com\n")
    assert good_entries(copy) is None
    assert good_entries(tmp_path / "missing.txt") is None
